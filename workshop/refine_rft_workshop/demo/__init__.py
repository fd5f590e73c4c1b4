"""The CPU demo: the whole pipeline on the embedded tiny VLM and synthetic birds.

Not a pipeline stage: it drives the stages (``data`` → ``train`` → ``evaluate`` → ``report``) on
toy data. :mod:`.pipeline` is ``refine-rft-workshop demo``; the tiny instruct base it starts from
is shipped, made once by :mod:`refine_rft_workshop.base` (``refine-rft-workshop build-base``).
"""

from refine_rft_workshop.demo.pipeline import RUNS, DemoConfig, demo_runs, main, run_demo

__all__ = ["RUNS", "DemoConfig", "demo_runs", "main", "run_demo"]
