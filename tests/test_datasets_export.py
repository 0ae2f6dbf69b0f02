"""``export-dataset``: an augment run becomes a Parquet + dataset-card folder that
``datasets.load_dataset`` reads offline and that converts back to the run's corpus.tsv."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from conftest import DEMO
from llm_aug.cli import app
from llm_aug.core.errors import UserError
from llm_aug.data.parquet import read_parquet, write_records
from llm_aug.jobs import ExportResult, export_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("aug")
    for name in ("train.tsv", "val.tsv"):
        shutil.copy(DEMO / name, root / name)
    result = CliRunner().invoke(app, ["augment", "--method", "eda", "--task", "fine", "--train",
                                      str(root / "train.tsv"), "--protect", str(root / "val.tsv"),
                                      "--balance", "12", "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root / "run"


def _card(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def _corpus(run_dir):
    return [json.loads(line) for line in (run_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]


def test_folder_holds_every_corpus_row_and_a_card(run_dir, tmp_path):
    result = export_dataset(run_dir, tmp_path / "hf")
    assert isinstance(result, ExportResult) and result.files == ["data/train-00000-of-00001.parquet", "README.md"]
    corpus = _corpus(run_dir)
    _, rows = read_parquet(tmp_path / "hf" / result.files[0])
    rows = [r for _, r in rows]
    assert [(r["id"], r["text"], r["label"], r["synthetic"]) for r in rows] == \
        [(c["id"], c["text"], c["label"], c["synthetic"]) for c in corpus]
    assert {r["method"] for r in rows if not r["synthetic"]} == {"original"}
    assert result.n_synthetic == sum(c["synthetic"] for c in corpus) > 0
    meta, body = _card(tmp_path / "hf" / "README.md")
    info = meta["llm_aug"]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert meta["license"] == "other" and "SOS-1K" in body
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": result.files[0]}]
    assert info["review_status"] == "not reviewed" and "suicide and self-harm" in info["content_warning"]
    assert info["rejections"] == manifest["result"]["rejections"]
    assert {lv: c["original"] + c["synthetic"] for lv, c in info["splits"]["train"]["per_level"].items()} == \
        {int(k): v for k, v in manifest["result"]["after"].items()}
    assert "Content warning" in body and "| all |" in body


def test_license_option_and_refusals(run_dir, tmp_path):
    out = CliRunner().invoke(app, ["export-dataset", str(run_dir), "--out", str(tmp_path / "hf"),
                                   "--license", "cc-by-nc-4.0"])
    assert out.exit_code == 0, out.output
    assert _card(tmp_path / "hf" / "README.md")[0]["license"] == "cc-by-nc-4.0"
    with pytest.raises(UserError, match="not an empty folder"):
        export_dataset(run_dir, tmp_path / "hf")
    with pytest.raises(UserError, match="no corpus.jsonl"):
        export_dataset(tmp_path, tmp_path / "other")


def test_load_dataset_offline_and_back_to_the_same_tsv(run_dir, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    export_dataset(run_dir, tmp_path / "hf")
    ds = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    train = ds["train"]
    assert train.num_rows == len(_corpus(run_dir)) and train.features["label"].dtype == "int64"
    records = [(n, {"comment": r["text"], "myLabel": r["label"], "synthetic": int(r["synthetic"])})
               for n, r in enumerate(train, 1)]
    write_records(tmp_path / "back.tsv", ["comment", "myLabel", "synthetic"], records)
    assert (tmp_path / "back.tsv").read_bytes() == (run_dir / "corpus.tsv").read_bytes()
