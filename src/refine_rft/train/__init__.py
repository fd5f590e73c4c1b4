"""Training on TRL: ReFine-RFT GRPO (:mod:`.grpo`, monitored by :mod:`.monitor`), the SFT baseline (:mod:`.sft`), LoRA merging
(:mod:`.export`), recipes (:mod:`.config`) and the question-to-dataset mapping (:mod:`.data`)."""
