"""``refine-rft export --adapter DIR --out DIR``: merge a LoRA adapter into its base model.

The merged folder is a plain transformers checkpoint (model + processor), which vLLM and
lmms-eval load without peft. The base model is the one the adapter names
(``base_model_name_or_path`` in ``adapter_config.json``) unless ``--base`` says otherwise; the
processor is the adapter folder's (the trainers save it there, with the recipe's image resolution)
or else the base model's. The run's ``refine_rft_config.yaml`` is copied too, so that evaluations of
the merged model find the resolution it was trained at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from refine_rft.errors import MissingFile, OutputExists
from refine_rft.settings import parse
from refine_rft.trust import TrustArguments


def export_merged(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None,
                  dtype: str = "auto", trust_remote_code: bool = False) -> Path:
    """Load ``base`` + the LoRA adapter in ``adapter_dir``, merge, and save model and processor to
    ``out_dir``; code in the folders runs only as :mod:`refine_rft.trust` decides."""
    import shutil

    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from refine_rft.trust import load_processor, trust_for

    from refine_rft.files import atomic_directory, refuse_output_over_input
    from refine_rft.train.config import SAVED_CONFIG_NAME

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    refuse_output_over_input([("--adapter", adapter_dir), ("--base", base)], [], replaced=[("--out", out_dir)])
    if out_dir.exists():
        raise OutputExists(f"{out_dir} exists; remove it or choose another --out")
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise MissingFile(f"{adapter_dir} is not a LoRA adapter folder: no adapter_config.json")
    base = base or json.loads(config_path.read_text())["base_model_name_or_path"]
    torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
    processor_source = adapter_dir if (adapter_dir / "processor_config.json").is_file() else base
    trust_for(processor_source, trust_remote_code)  # refuse untrusted code before loading anything
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch_dtype,
                                                        trust_remote_code=trust_for(base, trust_remote_code))
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    processor = load_processor(processor_source, trust_remote_code)

    # An interrupted export leaves no half model behind.
    with atomic_directory(out_dir) as work:
        merged.save_pretrained(work)
        processor.save_pretrained(work)
        if (adapter_dir / SAVED_CONFIG_NAME).is_file():
            shutil.copy2(adapter_dir / SAVED_CONFIG_NAME, Path(work) / SAVED_CONFIG_NAME)
    return out_dir


@dataclass
class ExportArguments:
    """Which adapter to merge, into which folder."""

    adapter: str = field(metadata={"help": "LoRA adapter folder (a run's output_dir or checkpoint)"})
    out: str = field(metadata={"help": "folder for the merged model and processor (must not exist)"})
    base: str | None = field(default=None, metadata={
        "help": "base model folder or hub id (default: the one the adapter names)"})
    dtype: str = field(default="auto", metadata={"help": "dtype to merge and save in",
                                                 "choices": ("auto", "float32", "bfloat16", "float16")})


def parse_args(argv: list[str] | None = None) -> tuple[ExportArguments, TrustArguments]:
    return parse("refine-rft export", [ExportArguments, TrustArguments], argv,
                 description="Merge a LoRA adapter into its base model; save model and processor.", select="export")


def main(argv: list[str] | None = None) -> int:
    args, trust = parse_args(argv)
    out = export_merged(args.adapter, args.out, args.base, args.dtype, trust.trust_remote_code)
    print(f"merged model and processor written to {out}")
    return 0
