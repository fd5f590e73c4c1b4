"""Evaluation: Answer-only generation (``generate``), scoring (``score``), ``predict`` and general VQA.

>>> from refine_rft.evaluate import generate_predictions, score_predictions
"""

from refine_rft.evaluate.generate import EvalSettings, generate_predictions
from refine_rft.evaluate.score import score_predictions

__all__ = ["EvalSettings", "generate_predictions", "score_predictions"]
