"""A full disk (ENOSPC) while writing outputs: one line, exit 2, nothing half-written at a
final path; resumable raw results stay resumable (issue 19, part 5).

The disk is simulated, portably: the CLI runs in a child process whose writable files
under the output folder fail with ENOSPC once a byte budget is spent, after writing the
part that fit (as a real full disk does).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import assert_ok, invoke
from conftest import DEMO
from llm_aug.core.files import DiskFull, atomic_write, atomic_write_all
from llm_server import LLMServer

# Installed in the child before the CLI runs: every file opened for writing under
# FAKE_DISK_DIR (open, io.open, pathlib, os.fdopen of mkstemp's temp files) shares
# FAKE_DISK_BYTES of space.
FAKE_DISK = r'''
import builtins, errno, io, os, sys
root = os.path.realpath(os.environ["FAKE_DISK_DIR"])
budget = [int(os.environ["FAKE_DISK_BYTES"])]

class Full:
    def __init__(self, fh):
        self._fh = fh
    def write(self, data):
        if len(data) > budget[0]:
            self._fh.write(data[:budget[0]])
            self._fh.flush()
            budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        budget[0] -= len(data)
        return self._fh.write(data)
    def writelines(self, lines):
        for line in lines:
            self.write(line)
    def __getattr__(self, name):
        return getattr(self._fh, name)
    def __iter__(self):
        return iter(self._fh)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self._fh.close()

def writable(mode):
    return any(c in mode for c in "wax+")

real_open, real_fdopen = io.open, os.fdopen
def fake_open(file, mode="r", *args, **kwargs):
    fh = real_open(file, mode, *args, **kwargs)
    inside = isinstance(file, (str, os.PathLike)) and os.path.realpath(file).startswith(root)
    return Full(fh) if writable(mode) and inside else fh
def fake_fdopen(fd, mode="r", *args, **kwargs):
    fh = real_fdopen(fd, mode, *args, **kwargs)
    return Full(fh) if writable(mode) else fh
builtins.open = io.open = fake_open
os.fdopen = fake_fdopen
from llm_aug.cli import main
sys.argv = ["llm-aug", *sys.argv[1:]]
main()
'''


def _run_on_full_disk(out_dir: Path, budget: int, *args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAKE_DISK_DIR": str(out_dir), "FAKE_DISK_BYTES": str(budget),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", FAKE_DISK, "-q", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def _assert_one_line_exit_2(res: subprocess.CompletedProcess, path: Path) -> None:
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if not line.startswith("WARNING")]
    assert errors == [f"error: cannot write {path}: {os.strerror(errno.ENOSPC)}; free some space "
                      "or write elsewhere, then rerun the same command"], res.stderr[-3000:]


def _litter(folder: Path) -> list[str]:
    """Temp files left behind by an atomic write."""
    return sorted(p.name for p in folder.rglob(".*.tmp"))


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n", encoding="utf-8")

    def write(fh) -> None:
        fh.write("new, half of it")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(DiskFull, match=str(path)):
        atomic_write(path, write)
    with pytest.raises(DiskFull):  # files that belong together: none of them appears
        atomic_write_all([(tmp_path / "a.txt", lambda fh: fh.write("a")), (tmp_path / "b.txt", write)])
    assert path.read_text(encoding="utf-8") == "old\n" and not (tmp_path / "a.txt").exists()
    assert _litter(tmp_path) == []


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "majority"
    assert_ok(invoke("train", "--task", "fine", "--method", "majority", "--train", DEMO / "train.tsv",
                     "--val", DEMO / "val.tsv", "--out", out))
    return out


def test_predict_on_a_full_disk_writes_no_predictions(tmp_path, model_dir):
    out = tmp_path / "preds"
    predictions = out / "predictions.jsonl"
    res = _run_on_full_disk(out, 3000, "predict", model_dir, "--input", DEMO / "val.tsv",
                            "--output", predictions)
    _assert_one_line_exit_2(res, predictions)
    assert not predictions.exists() and _litter(tmp_path) == []


def test_train_on_a_full_disk_leaves_no_model(tmp_path):
    out = tmp_path / "model"
    res = _run_on_full_disk(out, 200, "train", "--task", "fine", "--method", "majority",
                            "--train", DEMO / "train.tsv", "--val", DEMO / "val.tsv", "--out", out)
    assert res.returncode == 2 and "cannot write" in res.stderr, res.stderr[-3000:]
    assert not (out / "model.pkl").exists() and _litter(tmp_path) == []


def test_classify_on_a_full_disk_keeps_its_raw_rows_resumable(tmp_path):
    out = tmp_path / "run"
    predictions, raw = out / "p.jsonl", out / "p.raw.jsonl"
    with LLMServer(reply=lambda body, i: "等级：3") as server:
        args = ("classify", "--task", "fine", "--input", DEMO / "val.tsv", "--output", predictions,
                "--backend", "openai", "--base-url", server.url, "--model", "m")
        res = _run_on_full_disk(out, 4000, *args)
        _assert_one_line_exit_2(res, raw)
        assert not predictions.exists() and not (out / "p.jsonl.lock").exists()
        saved = raw.read_text(encoding="utf-8").count("\n")
        assert 0 < saved < 33  # the rows that fit, and maybe a cut line after them
        before = server.request_count
        assert_ok(invoke(*args))  # space again: the rerun resumes
        # Saved rows are not asked again (the request cache may answer more of them).
        assert server.request_count - before <= 33 - saved
    assert predictions.read_text(encoding="utf-8").count("\n") == 33


def test_augment_on_a_full_disk_writes_no_corpus(tmp_path):
    out = tmp_path / "aug"
    res = _run_on_full_disk(out, 20_000, "augment", "--method", "eda", "--task", "fine",
                            "--train", DEMO / "train.tsv", "--protect", DEMO / "val.tsv",
                            "--balance", "40", "--out", out)
    assert res.returncode == 2, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write {out}"), res.stderr[-3000:]
    written = sorted(p.name for p in out.iterdir())
    assert not {"corpus.tsv", "corpus.jsonl", "rejected.jsonl", "manifest.json"} & set(written)
    assert _litter(tmp_path) == [] and not any(name.endswith(".part") for name in written)
