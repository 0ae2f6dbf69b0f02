"""Start-up cost: a command imports only what it uses.

Each probe runs in a fresh interpreter (this process has imported everything already)
and reports ``sys.modules`` after the import or the command. Timings live in
``bench/runner_throughput.py``; these tests check which libraries load, which does not
depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import DEMO, REPO

#: Libraries that cost seconds to import and that zero-shot classification never calls.
HEAVY = {"sklearn", "scipy", "matplotlib", "torch", "transformers", "sentence_transformers", "jieba"}

_CLI_PROBE = """
import json, sys
sys.argv = ["llm-aug", *json.loads(sys.argv[1])]
from llm_aug.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code or 0
print("\\nPROBE " + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _probe(code: str, *args: str, cwd: Path = REPO) -> dict:
    """Run ``code`` in a fresh interpreter; the exit code it saw and the modules it loaded."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env=_env())
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, f"probe failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return json.loads(lines[-1][len("PROBE "):])


def _env() -> dict[str, str]:
    return {**os.environ, "LLM_AUG_QUIET": "1"}


def _loaded(probe: dict, libraries: set[str]) -> set[str]:
    """Which of ``libraries`` (top-level package names) the probe had imported."""
    return {name.split(".")[0] for name in probe["modules"]} & libraries


def _cli(*args: str, cwd: Path = REPO) -> dict:
    return _probe(_CLI_PROBE, json.dumps(list(args)), cwd=cwd)


def test_importing_the_classify_job_loads_no_heavy_library() -> None:
    probe = _probe("import json, sys\nimport llm_aug.jobs.classify\n"
                   "print('PROBE ' + json.dumps({'modules': sorted(sys.modules)}))")
    assert not _loaded(probe, HEAVY), _loaded(probe, HEAVY)
    # nor the other jobs (augment, compare_prompts, train...) behind the package; only the
    # result base every job's result type stands on
    jobs = {m for m in probe["modules"] if m.startswith("llm_aug.jobs.")}
    assert jobs == {"llm_aug.jobs.classify", "llm_aug.jobs.results"}, jobs


def test_help_loads_neither_the_jobs_nor_the_llm_runtime() -> None:
    probe = _cli("--help")
    assert probe["code"] == 0
    unused = HEAVY | {"numpy", "aiohttp", "openai", "yaml", "jinja2"}
    assert not _loaded(probe, unused), _loaded(probe, unused)
    assert not {m for m in probe["modules"] if m.startswith(("llm_aug.jobs.", "llm_aug.llm", "llm_aug.eval",
                                                   "llm_aug.classifiers", "llm_aug.augment"))}


@pytest.fixture
def replies(tmp_path: Path) -> Path:
    path = tmp_path / "replies.json"
    path.write_text(json.dumps(["等级：3"]), encoding="utf-8")
    return path


@pytest.mark.parametrize("extra", [
    pytest.param(["--dry-run"], id="fake-dry-run"),
    pytest.param([], id="fake-run"),
    pytest.param(["--shots", "2", "--shot-strategy", "random", "--train", str(DEMO / "train.tsv"),
                  "--dry-run"], id="fake-random-shots"),
])
def test_zero_shot_classify_loads_no_heavy_library(tmp_path: Path, replies: Path, extra: list[str]) -> None:
    out = tmp_path / "p.jsonl"
    probe = _cli("classify", "--task", "fine", "--input", str(DEMO / "val.tsv"), "--output", str(out),
                 "--backend", "fake", "--fake-replies", str(replies), *extra)
    assert probe["code"] == 0
    assert out.is_file() != ("--dry-run" in extra)  # the run really ran (or really did not)
    assert not _loaded(probe, HEAVY | {"numpy"}), _loaded(probe, HEAVY | {"numpy"})


def test_openai_dry_run_loads_no_heavy_library_nor_the_sdk(tmp_path: Path) -> None:
    probe = _cli("classify", "--task", "fine", "--input", str(DEMO / "val.tsv"), "--output",
                 str(tmp_path / "p.jsonl"), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                 "--model", "m", "--dry-run")
    assert probe["code"] == 0
    assert not _loaded(probe, HEAVY | {"numpy", "openai"}), _loaded(probe, HEAVY | {"numpy", "openai"})


def test_jobs_api_names_resolve_to_the_documented_objects() -> None:
    import llm_aug.jobs.classify  # noqa: F401  binds the submodule on the package...
    import llm_aug.jobs.compare_prompts  # noqa: F401
    from llm_aug import jobs
    from llm_aug.jobs import classify, compare_prompts

    # ...yet the package names stay the functions, as README.md documents
    for fn in (jobs.classify, classify, jobs.compare_prompts, compare_prompts):
        assert callable(fn) and not isinstance(fn, types.ModuleType)
    for name in jobs.__all__:
        assert getattr(jobs, name).__name__ == name
    assert set(jobs.__all__) <= set(dir(jobs))
    with pytest.raises(AttributeError):
        jobs.no_such_job  # noqa: B018
