"""The CPU demo: the whole pipeline on the embedded tiny VLM and synthetic birds.

Not a pipeline stage: it drives the stages (``data`` → ``train`` → ``evaluate`` → ``report``) on
toy data. :mod:`.pipeline` is ``refine-rft-workshop demo``; :mod:`.build_base` (``refine-rft-workshop build-base``)
and :mod:`.instruct_data` make the tiny instruct base it starts from, :mod:`.base_profile` measures
that base's starting point and :mod:`.base_card` writes its card.
"""

from refine_rft_workshop.demo.pipeline import RUNS, DemoConfig, demo_runs, main, run_demo

__all__ = ["RUNS", "DemoConfig", "demo_runs", "main", "run_demo"]
