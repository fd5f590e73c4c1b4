"""The CPU demo: the whole pipeline on the embedded tiny VLM and synthetic birds.

Not a pipeline stage: it drives the stages (``data`` → ``train`` → ``evaluate`` → ``report``) on
toy data. :mod:`.pipeline` is ``refine-rft demo``; :mod:`.pretrain` and :mod:`.instruct_data` make
the tiny instruct base it starts from.
"""

from refine_rft.demo.pipeline import RUNS, DemoConfig, main, run_demo

__all__ = ["RUNS", "DemoConfig", "main", "run_demo"]
