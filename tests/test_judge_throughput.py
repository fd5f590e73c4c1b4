"""benchmarks/judge_throughput.py, run as a user runs it, on a small step: every figure it prints
comes from a real exchange with the scripted judge in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "judge_throughput.py"


@pytest.mark.end_to_end
def test_end_to_end_judge_throughput_reports_the_client_floor_pictures_and_group_judging(tmp_path):
    out = tmp_path / "figures.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--judgements", "12", "--group", "6", "--latency", "0.02",
                             "--concurrency", "4", "--sequential-sample", "4", "--image-size", "64",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert figures["judgements"] == 12 and figures["cache_hits"] == 12
    assert 1 <= figures["peak_in_flight"] <= 4  # the judge's concurrency bound, seen by the server
    assert figures["group_judging_requests"] == 2  # one request per group of 6
    for name in ("client_cpu_ms_per_judgement", "transport_alone_cpu_ms_per_request",
                 "openai_client_alone_cpu_ms_per_request", "pictures_cpu_ms_per_judgement",
                 "pictures_decoded_cpu_ms_per_judgement", "group_judging_cpu_ms_per_judgement"):
        assert figures[name] > 0, name
    assert figures["pictures_sent_as_files"] == 2  # the step's PNGs fit: sent as they are
    lines = result.stdout.splitlines()
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "concurrent", "client CPU", "transport alone", "openai alone", "of it, pictures", "pictures decoded",
        "group judging", "sequential", "cached rerun"]
