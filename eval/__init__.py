"""Evaluation of suicide-risk predictions (installed as ``llm_aug.eval``).

* :mod:`.metrics` -- ``compute_metrics``: accuracy, P/R/F1, MAE, QWK, within-1, binary collapse.
* :mod:`.bootstrap` -- ``bootstrap_ci`` and ``paired_bootstrap`` (vectorised with numpy).
* :mod:`.predictions` -- ``read_predictions`` (JSONL) and ``align`` with gold data by id.
* :mod:`.results` -- ``evaluate`` a predictions file and ``write_results`` (JSON + PNG).
* :mod:`.plots` -- confusion matrix and metric bar charts (matplotlib, Agg).
* :mod:`.report` -- ``compare_runs``: Markdown + self-contained HTML comparison.
* :mod:`.render` -- ``render``: every report page (compare, experiment, augment) from the
  Jinja2 templates in ``templates/``.

Submodules are imported on demand so that importing the package stays cheap.
"""
