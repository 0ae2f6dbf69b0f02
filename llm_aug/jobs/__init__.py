"""The jobs: the documented Python API, one function per thing a user runs.

The CLI is a thin shell over these (parse, call, print). Each takes files and plain
settings and writes its outputs and a manifest::

    from llm_aug import jobs
    jobs.train_model("fine", "train.tsv", "val.tsv", "runs/stack")
    jobs.predict_file("runs/stack", "val.tsv", "runs/stack/val.jsonl")
    jobs.evaluate_predictions("runs/stack/val.jsonl", "val.tsv")
"""

from llm_aug.jobs.augment import AugmentConfig, AugmentResult, run_augment
from llm_aug.jobs.classify import ClassifyResult, classify
from llm_aug.jobs.compare_prompts import compare_prompts
from llm_aug.jobs.demo import run_demo
from llm_aug.jobs.evaluate import evaluate_predictions
from llm_aug.jobs.select import select_by_cv
from llm_aug.jobs.train import TrainResult, predict_file, train_model, train_seeds

__all__ = [
    "AugmentConfig", "AugmentResult", "ClassifyResult", "TrainResult", "classify", "compare_prompts",
    "evaluate_predictions", "predict_file", "run_augment", "run_demo", "select_by_cv", "train_model",
    "train_seeds",
]
