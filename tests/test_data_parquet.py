"""Parquet beside TSV/JSONL: a corpus, a split or predictions round-trips, and every
reader (``load_dataset``, predictions) reads the Parquet file as it reads the original."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llm_aug.augment.corpus import write_corpus
from llm_aug.augment.rows import SynthRow
from llm_aug.cli import app
from llm_aug.core.errors import DataError
from llm_aug.data.io import Dataset, Row, load_dataset, read_records
from llm_aug.data.parquet import read_parquet, write_records
from llm_aug.eval.predictions import read_predictions

TEXTS = ['他说"我不想活了"', "普通的一天 no quotes", '"引号开头', "末尾引号\"", "中文 English 😀 mixed"]


def _corpus(tmp_path):
    original = Dataset([Row(f"o{i}", t, i % 4) for i, t in enumerate(TEXTS)])
    synth = [SynthRow(id="s1", text='生成的"帖子"', label=3, method="eda", source_ids=["o1"],
                      scores={"dedup": 0.1}),
             SynthRow(id="s2", text="另一条", label=2, method="llm", model="m", seed=7)]
    return write_corpus(tmp_path / "run", original, synth, [])


def _convert(src, dest):
    result = CliRunner().invoke(app, ["data", "convert", str(src), str(dest)])
    assert result.exit_code == 0, result.output
    return result.output


def test_corpus_tsv_to_parquet_to_tsv_unchanged(tmp_path):
    files = _corpus(tmp_path)
    _convert(files.tsv, tmp_path / "c.parquet")
    _convert(tmp_path / "c.parquet", tmp_path / "back.tsv")
    assert (tmp_path / "back.tsv").read_bytes() == files.tsv.read_bytes()
    header, records = read_parquet(tmp_path / "c.parquet")
    assert header == ["comment", "myLabel", "synthetic"]
    assert [r["synthetic"] for _, r in records] == ["0"] * 5 + ["1"] * 2
    a, b = load_dataset(files.tsv), load_dataset(tmp_path / "c.parquet")
    assert (a.ids, a.texts, a.labels) == (b.ids, b.texts, b.labels)
    assert b.texts[0] == '他说"我不想活了"'


def test_provenance_jsonl_round_trips_with_tabs_and_newlines(tmp_path):
    rows = [{"id": "a", "text": "一行\t制表\n换行", "label": 1, "synthetic": False},
            {"id": "b", "text": "x", "label": 2, "synthetic": True, "scores": {"dedup": 0.5}}]
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _convert(src, tmp_path / "p.parquet")
    _, back = read_parquet(tmp_path / "p.parquet")
    assert back[0][1]["text"] == "一行\t制表\n换行" and back[1][1]["scores"] == {"dedup": 0.5}
    ds = load_dataset(tmp_path / "p.parquet", text_col="text", label_col="label", id_col="id",
                      normalize=None)
    assert ds.ids == ["a", "b"] and ds.labels == [1, 2]
    # A text with a tab cannot become a TSV row: refused, not split into two fields.
    result = CliRunner().invoke(app, ["data", "convert", str(tmp_path / "p.parquet"), str(tmp_path / "p.tsv")])
    assert isinstance(result.exception, DataError) and "tab or line break" in str(result.exception)
    assert not (tmp_path / "p.tsv").exists()


def test_predictions_read_from_parquet(tmp_path):
    preds = [{"id": "a", "pred": 1, "proba": [0.2, 0.8]}, {"id": "b", "pred": None, "proba": None}]
    write_records(tmp_path / "preds.parquet", ["id", "pred", "proba"], list(enumerate(preds, 1)))
    got = read_predictions(tmp_path / "preds.parquet")
    assert [(r["id"], r["pred"], r["proba"]) for r in got] == [("a", 1, [0.2, 0.8]), ("b", None, None)]


def test_bad_parquet_and_unknown_extension(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_records(bad)
    with pytest.raises(DataError, match="cannot write this extension"):
        write_records(tmp_path / "x.xlsx", ["a"], [(1, {"a": 1})])


def test_jsonl_to_tsv_writes_json_for_lists_and_objects_and_1_0_for_booleans(tmp_path):
    from clirun import assert_ok, invoke

    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps({"comment": "帖子", "myLabel": 3, "synthetic": True, "source_ids": ["a1"],
                               "scores": {"length": 2.0}}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "c.tsv"
    assert_ok(invoke("data", "convert", src, out))
    import csv

    header, row = list(csv.reader(out.open(encoding="utf-8"), delimiter="\t"))  # fields with '"' are quoted
    cells = dict(zip(header, row))
    assert cells["synthetic"] == "1" and json.loads(cells["source_ids"]) == ["a1"]
    assert json.loads(cells["scores"]) == {"length": 2.0}
