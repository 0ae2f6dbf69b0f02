"""Whole LLM jobs as the CLI runs them: load data, run, write predictions and a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.llm_classify import ClassifyConfig, build_requests, classify_dataset, raw_results_path
from llm_aug.manifest import write_manifest
from llm_aug.prompting import load_prompt


def run_classify(task: str, input_file: Path, output: Path, cfg: ClassifyConfig, llm: Any,
                 make_runner: Callable[[Any], Any], *, train: Path | None = None,
                 dry_run: bool = False) -> dict[str, Any]:
    """Classify ``input_file``; return the run summary (or the dry-run estimate)."""
    scheme = scheme_for_task(task)
    data = load_dataset(input_file, scheme, require_labels=False)
    train_data = load_dataset(train, scheme) if train else None
    runner = make_runner(llm)
    prompt = load_prompt(cfg.prompt_name(task))
    if dry_run:
        requests, _ = build_requests(data, scheme, prompt, cfg, train_data)
        return runner.dry_run(requests, raw_results_path(output)).model_dump(mode="json")
    summary = classify_dataset(data, scheme, runner, cfg, output, train=train_data)
    files = [input_file] + ([train] if train else [])
    write_manifest(output.parent, "classify", data_files=files, seed=cfg.seed,
                   name=f"{output.stem}.manifest.json",
                   config={"task": task, "classify": cfg.model_dump(), "llm": llm.model_dump(mode="json")},
                   extra={"prompt": {"name": prompt.name, "version": prompt.version, "sha256": prompt.sha256},
                          "usage": summary.to_manifest()})
    return summary.to_manifest()
