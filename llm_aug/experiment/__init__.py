"""Experiments: a config-driven matrix of tasks x systems x train sets x seeds, cached per step.

``run_experiment`` computes what is missing into ``OUT/results``; ``write_report`` turns
``OUT`` into ``report.md`` and a self-contained ``report.html``.
"""

from llm_aug.experiment.config import ClassifierSystem, ExperimentConfig, LLMSystem
from llm_aug.experiment.execute import plan, run_experiment
from llm_aug.experiment.matrix import expand, step_key
from llm_aug.experiment.report import write_report
from llm_aug.experiment.resolve import ResolvedConfig, load_config
from llm_aug.experiment.step import Step

__all__ = [
    "ClassifierSystem", "ExperimentConfig", "LLMSystem", "ResolvedConfig", "Step", "expand",
    "load_config", "plan", "run_experiment", "step_key", "write_report",
]
