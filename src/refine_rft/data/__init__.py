"""Question data: the record type, the six FGVR benchmarks and custom data, the published choice
sets, few-shot sets and distractors (``refine-rft prepare``)."""
