"""Reports from run folders: the paper's tables, plots and a self-contained HTML page.

>>> from refine_rft.report import build_report, load_run
"""

from refine_rft.report.cli import build_report
from refine_rft.report.runs import load_run

__all__ = ["build_report", "load_run"]
