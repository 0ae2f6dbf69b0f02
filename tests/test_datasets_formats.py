"""Parquet outputs (``augment --format parquet``, ``predict``/``classify --output *.parquet``)
read back by every reader, and ``hf:DIR[:SPLIT]`` inputs loaded with ``datasets`` offline."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from clirun import assert_ok, invoke
from conftest import DEMO
from llm_aug.core.errors import DataError, UserError
from llm_aug.data.io import load_dataset, read_objects
from llm_aug.data.parquet import read_parquet, write_objects, write_parquet
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.predictions import read_predictions
from llm_aug.experiment.resolve import _must_exist
from llm_aug.jobs import export_dataset

FINE = scheme_for_task("fine")
AUGMENT = ["augment", "--method", "eda", "--task", "fine", "--balance", "12", "--seed", "3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same EDA augment run written as TSV and as Parquet."""
    root = tmp_path_factory.mktemp("fmt")
    for name in ("train.tsv", "val.tsv"):
        shutil.copy(DEMO / name, root / name)
    for fmt in ("tsv", "parquet"):
        assert_ok(invoke(*AUGMENT, "--train", root / "train.tsv", "--protect", root / "val.tsv",
                         "--out", root / fmt, "--format", fmt))
    return root


def test_augment_parquet_corpus_is_the_tsv_corpus_typed(runs, tmp_path):
    tsv, parquet = runs / "tsv", runs / "parquet"
    assert (parquet / "corpus.parquet").is_file() and not (parquet / "corpus.tsv").exists()
    assert (parquet / "corpus.jsonl").read_bytes() == (tsv / "corpus.jsonl").read_bytes()
    manifest = json.loads((parquet / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["corpus_format"] == "parquet"
    assert manifest["outputs"]["table"].endswith("corpus.parquet")
    header, rows = read_parquet(parquet / "corpus.parquet")
    assert header == ["comment", "myLabel", "synthetic"]
    assert {type(r["myLabel"]) for _, r in rows} == {int} and {type(r["synthetic"]) for _, r in rows} == {bool}
    assert_ok(invoke("data", "convert", parquet / "corpus.parquet", tmp_path / "back.tsv"))
    assert (tmp_path / "back.tsv").read_bytes() == (tsv / "corpus.tsv").read_bytes()
    a, b = load_dataset(tsv / "corpus.tsv", FINE), load_dataset(parquet / "corpus.parquet", FINE)
    assert a.rows == b.rows


def test_a_rerun_in_the_other_format_leaves_no_stale_corpus(tmp_path):
    from llm_aug.augment.corpus import write_corpus

    original = load_dataset(DEMO / "train.tsv", FINE)
    tsv = write_corpus(tmp_path, original, [], [])
    assert tsv.table.name == "corpus.tsv" and tsv.tsv == tsv.table
    parquet = write_corpus(tmp_path, original, [], [], fmt="parquet")
    assert parquet.table.is_file() and not tsv.table.exists()  # a stale TSV would feed old rows to training
    assert load_dataset(parquet.table, FINE).rows == original.rows
    with pytest.raises(ValueError, match="unknown corpus format"):
        write_corpus(tmp_path, original, [], [], fmt="csv")
    bad = invoke(*AUGMENT, "--train", DEMO / "train.tsv", "--no-protect", "--out", tmp_path / "x", "--format", "csv")
    assert isinstance(bad.exception, UserError) and "use tsv or parquet" in str(bad.exception)


def test_a_parquet_run_trains_exports_and_feeds_the_experiment(runs, tmp_path):
    parquet = runs / "parquet"
    assert _must_exist(parquet, "train set", tmp_path / "x.yaml") == (parquet / "corpus.parquet").resolve()
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", parquet / "corpus.parquet",
                     "--val", runs / "val.tsv", "--out", tmp_path / "model"))
    a = export_dataset(parquet, tmp_path / "hf-a")
    b = export_dataset(runs / "tsv", tmp_path / "hf-b")
    assert a.rows == b.rows and a.n_synthetic == b.n_synthetic > 0
    pa = (tmp_path / "hf-a" / a.files[0]).read_bytes()
    assert pa == (tmp_path / "hf-b" / b.files[0]).read_bytes()


@pytest.fixture(scope="module")
def model(runs):
    out = runs / "model"
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", runs / "train.tsv",
                     "--val", runs / "val.tsv", "--out", out))
    return out


def test_predict_to_parquet_reads_back_and_scores_like_jsonl(model, runs, tmp_path):
    assert_ok(invoke("predict", model, "--input", runs / "val.tsv", "--output", tmp_path / "p.jsonl"))
    assert_ok(invoke("predict", model, "--input", runs / "val.tsv", "--output", tmp_path / "p.parquet",
                     "--output-format", "parquet"))
    assert read_predictions(tmp_path / "p.parquet") == read_predictions(tmp_path / "p.jsonl")
    scores = []
    for name in ("p.jsonl", "p.parquet"):
        assert_ok(invoke("evaluate", tmp_path / name, "--gold", runs / "val.tsv", "--out", tmp_path / f"e-{name}",
                         "--n-boot", "50"))
        result = json.loads((tmp_path / f"e-{name}" / "results.json").read_text(encoding="utf-8"))
        assert result.pop("predictions").endswith(name)
        scores.append(result)
    assert scores[0] == scores[1] and "calibration" in scores[1]  # proba came back from Parquet too
    bad = invoke("predict", model, "--input", runs / "val.tsv", "--output", tmp_path / "q.jsonl",
                 "--output-format", "parquet")
    assert isinstance(bad.exception, UserError) and "ending .parquet" in str(bad.exception)
    assert not (tmp_path / "q.jsonl").exists()


def test_screened_parquet_predictions_and_their_triage_match_jsonl(model, runs, tmp_path):
    screened = tmp_path / "model"
    shutil.copytree(model, screened)
    assert_ok(invoke("calibrate-threshold", screened, "--coverage", "0.8"))
    for name in ("p.jsonl", "p.parquet"):  # the model's profile annotates (rewrites) the predictions
        assert_ok(invoke("predict", screened, "--input", runs / "val.tsv", "--output", tmp_path / name))
        assert_ok(invoke("triage", tmp_path / name, "--profile", screened, "--out", tmp_path / f"{name}.csv"))
    rows = read_predictions(tmp_path / "p.parquet")
    assert rows == read_predictions(tmp_path / "p.jsonl") and all("levels" in r and "p_high" in r for r in rows)
    assert (tmp_path / "p.parquet.csv").read_bytes() == (tmp_path / "p.jsonl.csv").read_bytes()


def test_classify_to_parquet_keeps_every_field(tmp_path):
    from llm_aug.jobs.classify import classify, prediction_counts

    llm = {"backend": {"kind": "fake", "replies": ["等级：3", "我无法判断", '{"label": 5}', "等级：7"]},
           "runner": {"cache_path": str(tmp_path / "cache.sqlite"), "quiet": True}}
    from llm_aug.prompting.classify import ClassifyConfig

    cfg = ClassifyConfig(samples=3, reask=True)
    results = {}
    for name in ("p.jsonl", "p.parquet"):
        res = classify("fine", DEMO / "val.tsv", tmp_path / name, llm=llm, config=cfg)
        results[name] = res
    rows = {name: [r for _, r in read_objects(tmp_path / name)] for name in results}
    keys = list(dict.fromkeys(k for r in rows["p.jsonl"] for k in r))
    assert rows["p.parquet"] == [{k: r.get(k) for k in keys} for r in rows["p.jsonl"]]
    assert any(isinstance(r["raw"], list) for r in rows["p.parquet"])  # samples: a list of replies
    assert prediction_counts(tmp_path / "p.parquet") == prediction_counts(tmp_path / "p.jsonl")
    assert results["p.parquet"].n_ok == results["p.jsonl"].n_ok


def test_objects_whose_types_vary_round_trip_exactly(tmp_path):
    objs = [{"id": "a", "pred": 3, "proba": [0.25, 0.75], "raw": "等级：3", "label_scores": {"3": -0.1},
             "parse": ["json"], "flag": True},
            {"id": "b", "pred": None, "proba": None, "raw": ["等级：1", "等级：2"], "label_scores": None,
             "parse": [], "flag": False},
            {"id": "c", "pred": 10, "proba": [], "raw": None, "label_scores": {}, "parse": ["regex", "json"],
             "flag": None}]
    write_objects(tmp_path / "o.parquet", objs)
    header, rows = read_parquet(tmp_path / "o.parquet")
    assert header == list(objs[0]) and [r for _, r in rows] == objs


# --- hf: inputs -----------------------------------------------------------------


@pytest.fixture
def datasets_offline(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")  # imported before the offline switch, as a user's would be
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    return datasets


def test_hf_export_folder_loads_as_the_corpus(runs, tmp_path, datasets_offline):
    export_dataset(runs / "tsv", tmp_path / "hf")
    corpus = [json.loads(line) for line in (runs / "tsv" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    for spec in (f"hf:{tmp_path / 'hf'}", f"hf:{tmp_path / 'hf'}:train"):
        data = load_dataset(spec, FINE)
        assert [(r.id, r.text, r.label) for r in data.rows] == [(c["id"], c["text"], c["label"]) for c in corpus]
    with pytest.raises(UserError, match="no split 'test'; it has train"):
        load_dataset(f"hf:{tmp_path / 'hf'}:test", FINE)
    assert_ok(invoke("train", "--task", "fine", "--method", "tfidf-lr", "--train", f"hf:{tmp_path / 'hf'}:train",
                     "--val", runs / "val.tsv", "--out", tmp_path / "model"))
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["data_files"][f"hf:{tmp_path / 'hf'}:train"].startswith("folder:")


def test_hf_plain_parquet_folder_needs_a_split_and_maps_columns(tmp_path, datasets_offline):
    train = load_dataset(DEMO / "train.tsv", FINE)
    folder = tmp_path / "plain" / "data"
    folder.mkdir(parents=True)
    write_parquet(folder / "train.parquet", [{"text": r.text, "label": r.label} for r in train.rows])
    write_parquet(folder / "validation.parquet", [{"text": r.text, "label": r.label} for r in train.rows[:5]])
    spec = f"hf:{tmp_path / 'plain'}"
    with pytest.raises(UserError, match="has splits .*train.*; name one"):
        load_dataset(spec, FINE)
    data = load_dataset(f"{spec}:train", FINE)
    assert data.rows == train.rows  # text/label columns, ids from the text as for the TSV
    assert len(load_dataset(f"{spec}:validation", FINE)) == 5
    with pytest.raises(DataError, match="missing column"):
        load_dataset(f"{spec}:train", FINE, text_col="post")


def test_hf_hub_id_offline_and_datasets_missing_are_one_line_errors(tmp_path, datasets_offline, monkeypatch):
    with pytest.raises(UserError, match="hub id needs the network"):
        load_dataset("hf:some-lab/no-such-dataset:train", FINE)
    out = invoke("data", "stats", "hf:some-lab/no-such-dataset")
    assert isinstance(out.exception, UserError)
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(UserError, match=r"pip install 'llm-aug\[hf\]'"):
        load_dataset(f"hf:{tmp_path}", FINE)


def test_hf_folder_whose_only_split_is_test_is_not_taken_unnamed(tmp_path, datasets_offline):
    """datasets names splits by file name: a folder of posts.parquet and heldout-test.parquet loads as one
    split, "test" (posts.parquet ignored). Taken unnamed, --train hf:DIR would train on the held-out posts."""
    train = load_dataset(DEMO / "train.tsv", FINE)
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_parquet(folder / "posts.parquet", [{"text": r.text, "label": r.label} for r in train.rows])
    write_parquet(folder / "heldout-test.parquet", [{"text": r.text, "label": r.label} for r in train.rows[:5]])
    with pytest.raises(UserError, match=r"its only split is 'test'.*hf:.*mixed:test"):
        load_dataset(f"hf:{folder}", FINE)
    assert len(load_dataset(f"hf:{folder}:test", FINE)) == 5  # named: the user's choice
