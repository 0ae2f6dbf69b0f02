"""`llm-aug data fetch sos1k`: the mapping, atomic downloads and the checks on what arrived.

A loopback HTTP server serves a copy of the upstream repository's layout, built from the
development copy in ../shared (train and val) plus synthetic test files of the right size.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clirun import assert_ok, invoke
from llm_aug.core.errors import DataError, UserError
from llm_aug.data import fetch
from llm_aug.data.io import load_dataset


def _synthetic_test(train: Path, n: int = 250) -> str:
    rows = load_dataset(train, None).rows
    lines = [f"合成测试帖子{i} {rows[i % len(rows)].text[:20]}\t{rows[i % len(rows)].label}" for i in range(n)]
    return "comment\tmyLabel\n" + "\n".join(lines) + "\n"


@pytest.fixture
def upstream(tmp_path, sos1k_dir):
    """A folder laid out like the upstream repository at the pinned commit."""
    root = tmp_path / "upstream"
    for local, remote in fetch.SOS1K_FILES.items():
        target = root / remote
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sos1k_dir / local
        if source.is_file():
            target.write_bytes(source.read_bytes())
        else:  # the test split is held out: any 250 labelled rows stand in for it
            task = local.split("/")[0]
            target.write_text(_synthetic_test(sos1k_dir / task / "train.tsv"), encoding="utf-8")
    return root


@pytest.fixture
def server(upstream):
    """Serve ``upstream`` on 127.0.0.1; yields (base URL, list of requested paths)."""
    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            requested.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(upstream)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    httpd.shutdown()


def test_the_mapping_names_the_fold_4_split_files():
    assert fetch.SOS1K_FILES["fine/val.tsv"] == "ModelTrain/data/val_data4.tsv"
    assert set(fetch.SOS1K_FILES) == {f"{t}/{s}.tsv" for t in ("fine", "binary") for s in ("train", "val", "test")}
    assert fetch.UPSTREAM_COMMIT in fetch.DEFAULT_BASE_URL


def test_fetch_downloads_every_mapped_file_and_records_hashes(server, tmp_path, monkeypatch, sos1k_dir):
    base, requested = server
    monkeypatch.setenv("LLM_AUG_SOS1K_BASE_URL", base)
    dest = tmp_path / "data"
    assert_ok(invoke("data", "fetch", "sos1k", "--dest", dest))
    assert sorted(requested) == sorted(f"/{r}" for r in fetch.SOS1K_FILES.values())
    assert (dest / "fine" / "val.tsv").read_bytes() == (sos1k_dir / "fine" / "val.tsv").read_bytes()
    manifest = json.loads((dest / "manifest.json").read_text())
    assert len(manifest["data_files"]) == 6 and all(len(h) == 64 for h in manifest["data_files"].values())
    assert not list(dest.rglob("*.part")), "temp files left behind"


def test_a_missing_upstream_file_is_one_line_naming_it(server, upstream, tmp_path, monkeypatch):
    base, _ = server
    (upstream / fetch.SOS1K_FILES["fine/val.tsv"]).unlink()
    monkeypatch.setenv("LLM_AUG_SOS1K_BASE_URL", base)
    res = invoke("data", "fetch", "sos1k", "--dest", tmp_path / "data")
    assert isinstance(res.exception, UserError)
    message = str(res.exception)
    assert message.startswith("fine/val.tsv: ") and "HTTP 404" in message and "\n" not in message
    assert not (tmp_path / "data" / "fine" / "val.tsv").exists()


def test_a_short_file_stops_the_fetch_naming_it(server, upstream, tmp_path, monkeypatch):
    base, _ = server
    path = upstream / fetch.SOS1K_FILES["binary/train.tsv"]
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:-3]) + "\n", encoding="utf-8")
    monkeypatch.setenv("LLM_AUG_SOS1K_BASE_URL", base)
    res = invoke("data", "fetch", "sos1k", "--dest", tmp_path / "data")
    assert isinstance(res.exception, DataError)
    assert "binary/train.tsv: 796 rows" in str(res.exception) and "799" in str(res.exception)


def test_binary_must_hold_the_same_posts_as_fine(sos1k_dir, tmp_path):
    fetch.copy_local(sos1k_dir, tmp_path / "ok")  # the development copy passes
    bad = tmp_path / "bad"
    fetch.copy_local(sos1k_dir, bad)
    lines = (bad / "binary" / "val.tsv").read_text(encoding="utf-8").splitlines()
    text, label = lines[1].split("\t")
    lines[1] = f"一条不在细粒度数据里的帖子\t{label}"
    (bad / "binary" / "val.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="1 fine posts are missing"):
        fetch.verify(bad)


def test_offline_error_says_what_to_do(tmp_path, monkeypatch):
    # A closed loopback port stands in for "offline".
    monkeypatch.setenv("LLM_AUG_SOS1K_BASE_URL", "http://127.0.0.1:9")
    res = invoke("data", "fetch", "sos1k", "--dest", tmp_path / "dl")
    assert isinstance(res.exception, UserError) and "--from DIR" in str(res.exception)
