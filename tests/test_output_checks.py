"""Bad outputs are refused in one line (exit 2) before any request is paid for or model trained.

Each command is checked for: an output of the wrong kind (a directory where a file
goes, a file where a directory goes), an output that is one of its inputs, a request
cache that is not a SQLite database or is corrupt, and an unwritable output directory.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import invoke
from conftest import DEMO
from llm_aug.core.errors import UserError
from llm_server import LLMServer

TRAIN, VAL = DEMO / "train.tsv", DEMO / "val.tsv"


def _classify(inp, out, url, *extra):
    return ["classify", "--task", "fine", "--input", inp, "--output", out, "--backend", "openai",
            "--base-url", url, "--model", "m", *extra]


def _augment(train, out, url, *extra):
    return ["augment", "--method", "llm", "--task", "fine", "--train", train, "--no-protect",
            "--balance", "x2", "--out", out, "--backend", "openai", "--base-url", url, "--model", "m",
            *extra]


def _compare(inp, out, url, *extra):
    return ["prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task", "fine",
            "--input", inp, "--out", out, "--backend", "openai", "--base-url", url, "--model", "m",
            "--n-boot", "50", *extra]


def _copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _not_sqlite(tmp: Path) -> Path:
    return _copy(VAL, tmp / "notes.sqlite")


def _corrupt_sqlite(tmp: Path) -> Path:
    """A cache whose header is valid but whose pages are garbage."""
    path = tmp / "corrupt.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE generations (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
               "finish_reason TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
               "completion_tokens INTEGER NOT NULL, created REAL NOT NULL)")
    db.executemany("INSERT INTO generations VALUES (?, ?, 'stop', 1, 1, 0)",
                   [(f"k{i}", "等级：4" * 50) for i in range(2000)])
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[5 * page:6 * page] = b"\xab" * page  # a b-tree page in the middle
    path.write_bytes(bytes(data))
    return path


CASES = {
    # name: (lay out the files in tmp_path -> (input, output, extra args), expected message)
    "output is a directory": (lambda t: (VAL, _mkdir(t / "d"), ()), "is a directory"),
    "output is the input": (lambda t: (_copy(VAL, t / "v.tsv"), t / "v.tsv", ()), "is also an input"),
    "cache not sqlite": (lambda t: (VAL, t / "p.jsonl", ("--cache", _not_sqlite(t))),
                         "is not a SQLite database"),
    "cache corrupt": (lambda t: (VAL, t / "p.jsonl", ("--cache", _corrupt_sqlite(t))), "is corrupt"),
}


def _refused(result, message: str) -> str:
    assert isinstance(result.exception, UserError), result.exception
    text = str(result.exception)
    assert message in text and "\n" not in text
    return text


@pytest.mark.parametrize("case", sorted(CASES))
def test_classify_refuses_bad_outputs_before_any_request(tmp_path, case):
    layout, message = CASES[case]
    inp, out, extra = layout(tmp_path)
    before = inp.read_bytes()
    with LLMServer() as srv:
        _refused(invoke(*_classify(inp, out, srv.url, *extra)), message)
        assert srv.request_count == 0
    assert inp.read_bytes() == before


@pytest.mark.parametrize("case", ["output is the input", "cache not sqlite", "cache corrupt"])
def test_prompts_compare_refuses_bad_outputs_before_any_request(tmp_path, case):
    layout, message = CASES[case]
    inp, _, extra = layout(tmp_path)
    out = tmp_path / "cmp"
    if case == "output is the input":
        inp = _copy(VAL, out / "flips.jsonl")  # the job writes flips.jsonl into its directory
        message = "flips.jsonl is also an input"
    with LLMServer() as srv:
        _refused(invoke(*_compare(inp, out, srv.url, *extra)), message)
        assert srv.request_count == 0


def test_prompts_compare_refuses_a_file_as_output_directory(tmp_path):
    out = _copy(VAL, tmp_path / "cmp")
    with LLMServer() as srv:
        _refused(invoke(*_compare(VAL, out, srv.url)), "is an existing file")
        assert srv.request_count == 0


@pytest.mark.parametrize("case", ["file as directory", "input in output", "cache not sqlite",
                                  "cache corrupt"])
def test_augment_refuses_bad_outputs_before_any_request(tmp_path, case):
    train, out, extra = TRAIN, tmp_path / "aug", ()
    if case == "file as directory":
        out, message = _copy(VAL, out), "is an existing file"
    elif case == "input in output":  # augmenting a corpus into its own folder would overwrite it
        train, message = _copy(TRAIN, out / "corpus.tsv"), "corpus.tsv is also an input"
    else:
        extra = ("--cache", _not_sqlite(tmp_path) if case == "cache not sqlite"
                 else _corrupt_sqlite(tmp_path))
        message = "not a SQLite database" if case == "cache not sqlite" else "is corrupt"
    with LLMServer() as srv:
        _refused(invoke(*_augment(train, out, srv.url, *extra)), message)
        assert srv.request_count == 0
    assert not (out / "plan.md").exists()


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a model would be trained."""
    import llm_aug.jobs.train as train_job

    def refuse(*args, **kwargs):
        raise AssertionError("a model was trained before the outputs were checked")
    monkeypatch.setattr(train_job, "select_on_val", refuse)


@pytest.mark.parametrize("seeds", [(), ("--seeds", "1,2")])
def test_train_refuses_bad_output_directories_before_training(tmp_path, no_training, seeds):
    args = ("train", "--task", "fine", "--method", "majority", *seeds)
    as_file = _copy(VAL, tmp_path / "model")
    _refused(invoke(*args, "--train", TRAIN, "--val", VAL, "--out", as_file), "is an existing file")
    inside = _copy(VAL, tmp_path / "m2" / ("seeds.json" if seeds else "val_predictions.jsonl"))
    _refused(invoke(*args, "--train", TRAIN, "--val", inside, "--out", tmp_path / "m2"),
             "is also an input")


def test_predict_refuses_bad_outputs(tmp_path):
    model = tmp_path / "model"
    assert invoke("train", "--task", "fine", "--method", "majority", "--train", TRAIN, "--val", VAL,
                  "--out", model).exit_code == 0
    inp = _copy(VAL, tmp_path / "v.tsv")
    before = inp.read_bytes()
    _refused(invoke("predict", model, "--input", inp, "--output", inp), "is also an input")
    _refused(invoke("predict", model, "--input", inp, "--output", tmp_path), "is a directory")
    assert inp.read_bytes() == before


def test_check_outputs_sees_through_other_spellings_of_the_input(tmp_path):
    from llm_aug.core.paths import check_outputs

    inp = _copy(VAL, tmp_path / "a" / "v.tsv")
    os.link(inp, tmp_path / "hard.tsv")
    (tmp_path / "soft.tsv").symlink_to(inp)
    for spelling in (tmp_path / "a" / ".." / "a" / "v.tsv", tmp_path / "hard.tsv", tmp_path / "soft.tsv"):
        with pytest.raises(UserError, match="is also an input"):
            check_outputs(output=spelling, inputs=[inp])
    with pytest.raises(UserError, match="is a file, not a directory"):
        check_outputs(output=inp / "p.jsonl")
    check_outputs(output=tmp_path / "new" / "deeper" / "p.jsonl", inputs=[inp, None],
                  cache=tmp_path / "new" / "c.sqlite")  # nothing exists yet: fine


# --- through the entry point: exit code 2 and one line, also for an unwritable directory ----


def _drop_dac_override():  # pragma: no cover - runs in the child, before exec
    """Root without CAP_DAC_OVERRIDE: file permissions bind it as they bind anyone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _start(args, cwd: Path, unprivileged: bool = False) -> subprocess.Popen:
    """``python -m llm_aug``; ``unprivileged``: when run by root, without its power to write anywhere."""
    demote = unprivileged and os.geteuid() == 0
    try:
        return subprocess.Popen([sys.executable, "-m", "llm_aug", "-q", *map(str, args)], cwd=cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_drop_dac_override if demote else None)
    except (OSError, subprocess.SubprocessError) as exc:
        if not demote:
            raise
        pytest.skip(f"cannot drop root's CAP_DAC_OVERRIDE here: {exc}")


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    """Exit code and stderr of a started command."""
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


@pytest.mark.slow
def test_unwritable_output_directory_exits_2_before_any_request(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    with LLMServer() as srv:
        procs = [_start(args, tmp_path, unprivileged=True) for args in (
            _classify(VAL, locked / "p.jsonl", srv.url),
            _augment(TRAIN, locked / "aug", srv.url),
            _compare(VAL, locked / "cmp", srv.url),
            ["predict", "nowhere", "--input", VAL, "--output", locked / "p.jsonl"],
            ["train", "--task", "fine", "--train", TRAIN, "--val", VAL, "--out", locked / "m"])]
        results = [_finish(proc) for proc in procs]
        assert srv.request_count == 0
    locked.chmod(0o755)
    for code, stderr in results:
        assert code == 2, stderr[-2000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "is not writable" in lines[0] and str(locked) in lines[0], lines
    assert not any(locked.iterdir())


def test_output_equal_to_input_exits_2(tmp_path):
    inp = _copy(VAL, tmp_path / "v.tsv")
    with LLMServer() as srv:
        code, stderr = _finish(_start(_classify(inp, inp, srv.url), tmp_path))
    assert code == 2 and stderr.count("\n") == 1 and "is also an input" in stderr
    assert inp.read_bytes() == VAL.read_bytes()
