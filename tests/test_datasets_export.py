"""``export-dataset``: an augment run becomes a Parquet + dataset-card folder that
``datasets.load_dataset`` reads offline and that converts back to the run's corpus.tsv."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from augment_run import make_run
from llm_aug.cli import app
from llm_aug.core.errors import UserError
from llm_aug.data.io import read_records
from llm_aug.data.parquet import read_parquet, write_records
from llm_aug.jobs import ExportResult, export_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("aug"))


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


def _sos_rows(sos1k_dir, tmp_path):
    """SOS-1K train posts: 4 per level plus 20 with quotes, three as a scraper might hand them
    over (a tab, a line break, HTML entities), loaded, so normalised, as the loader does."""
    from llm_aug.data.io import load_dataset, write_tsv

    rows = load_dataset(sos1k_dir / "fine" / "train.tsv").rows
    quoted = [r for r in rows if any(c in r.text for c in '"“”\'')]
    per_level = [r for level in range(11) for r in [r for r in rows if r.label == level][:4]]
    picked = list({r.id: r for r in quoted[:20] + per_level}.values())
    raw = [{"comment": r.text, "myLabel": r.label} for r in picked]
    for i, mess in enumerate(("\t", "\n", "&nbsp;&quot;")):
        raw[i]["comment"] = raw[i]["comment"][:5] + mess + raw[i]["comment"][5:]
    write_records(tmp_path / "raw.jsonl", ["comment", "myLabel"], list(enumerate(raw, 1)))
    src = load_dataset(tmp_path / "raw.jsonl")
    write_tsv(src.rows, tmp_path / "src.tsv")
    return src


def test_sos1k_posts_tsv_parquet_run_dataset_tsv_byte_identical(sos1k_dir, tmp_path, monkeypatch):
    """TSV -> data convert -> Parquet -> augment --format parquet -> export-dataset -> hf: dataset -> TSV."""
    datasets = pytest.importorskip("datasets")
    from clirun import assert_ok, invoke
    from llm_aug.data.io import load_dataset

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    src = _sos_rows(sos1k_dir, tmp_path)
    assert any('"' in r.text for r in src.rows) and not any(c in r.text for r in src.rows for c in "\t\n")
    assert_ok(invoke("data", "convert", tmp_path / "src.tsv", tmp_path / "src.parquet"))
    assert_ok(invoke("augment", "--method", "eda", "--task", "fine", "--train", tmp_path / "src.parquet",
                     "--no-protect", "--balance", "6", "--format", "parquet", "--out", tmp_path / "run"))
    assert_ok(invoke("export-dataset", tmp_path / "run", "--out", tmp_path / "hf"))
    spec = f"hf:{tmp_path / 'hf'}:train"
    header, records = read_records(spec)
    assert "text" in header and "synthetic" in header
    original = [(n, {"comment": r["text"], "myLabel": r["label"]}) for n, r in records if not r["synthetic"]]
    write_records(tmp_path / "back.tsv", ["comment", "myLabel"], original)
    assert (tmp_path / "back.tsv").read_bytes() == (tmp_path / "src.tsv").read_bytes()
    corpus = [(n, {"comment": r["text"], "myLabel": r["label"], "synthetic": r["synthetic"]}) for n, r in records]
    write_records(tmp_path / "corpus-back.tsv", ["comment", "myLabel", "synthetic"], corpus)
    assert_ok(invoke("data", "convert", tmp_path / "run" / "corpus.parquet", tmp_path / "corpus.tsv"))
    assert (tmp_path / "corpus-back.tsv").read_bytes() == (tmp_path / "corpus.tsv").read_bytes()
    loaded = load_dataset(spec)
    assert [r for r in loaded.rows if r.id in set(src.ids)] == src.rows  # same ids, texts, labels
    assert len(loaded) > len(src)


def test_a_folder_that_is_not_an_augment_run_is_refused(run_dir, tmp_path):
    for manifest, message in (('{"command": "train"}', "is from `train`, not `augment`"),
                              ("[1, 2]", "expected a JSON object"), ("{", "invalid JSON")):
        fake = tmp_path / f"fake{len(message)}"
        shutil.copytree(run_dir, fake)
        (fake / "manifest.json").write_text(manifest, encoding="utf-8")
        with pytest.raises(UserError, match=message):
            export_dataset(fake, tmp_path / f"out{len(message)}")
