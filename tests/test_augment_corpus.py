"""Corpus files round-trip through the loader, keep provenance and hold no protected text;
reports render with the numbers they were given."""

from __future__ import annotations

import json

import pytest

from llm_aug.augment.corpus import write_corpus
from llm_aug.augment.filters import apply_filters, rejection_counts
from llm_aug.augment.rows import PromptRef, SynthRow
from llm_aug.augment.summary import (
    distinct_n,
    diversity,
    mean_max_similarity,
    mean_pairwise_similarity,
    pick_samples,
    report_data,
)
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.render import render
from test_augment_filters import CFG, NORMAL, TRAIN, VAL, synth


def _filtered():
    rows = [
        synth(NORMAL, 3, rid="keep1", exemplar_ids=["t3"], prompt=PromptRef(name="gen-v1", sha="abc123"),
              model="qwen-0.5b", seed=11),
        synth("好想找个没人认识的地方重新开始，可是我连出门的力气都没有了。", 4, rid="keep2"),
        synth(VAL.rows[0].text.replace("好吗", "好不好"), 10, rid="leak"),
        synth("作为AI助手，我建议你多和身边的人聊聊。", 3, rid="bot"),
    ]
    return apply_filters(rows, CFG, TRAIN, [VAL])


def test_corpus_round_trips_and_holds_no_protected_text(tmp_path):
    kept, rejected = _filtered()
    assert {r.id for r in kept} == {"keep1", "keep2"}
    files = write_corpus(tmp_path / "out", TRAIN, kept, rejected)
    data = load_dataset(files.tsv, scheme_for_task("fine"))
    assert data.texts == TRAIN.texts + [r.text for r in kept]
    assert data.labels == TRAIN.labels + [r.label for r in kept]
    body = files.tsv.read_text(encoding="utf-8")
    lines = body.splitlines()
    assert lines[0] == "comment\tmyLabel\tsynthetic"  # SOS-1K columns first, every row marked
    assert [line.rsplit("\t", 1)[1] for line in lines[1:]] == ["0"] * len(TRAIN) + ["1"] * len(kept)
    for v in VAL.rows:
        assert v.text[:15] not in body
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left behind


def test_jsonl_provenance_and_rejected(tmp_path):
    kept, rejected = _filtered()
    files = write_corpus(tmp_path, TRAIN, kept, rejected)
    prov = [json.loads(line) for line in files.jsonl.read_text(encoding="utf-8").splitlines()]
    assert len(prov) == len(TRAIN) + len(kept)
    assert prov[0] == {"id": "t0", "text": TRAIN.rows[0].text, "label": 0, "synthetic": False}
    syn = {p["id"]: p for p in prov if p["synthetic"]}
    assert syn["keep1"]["prompt"] == {"name": "gen-v1", "sha": "abc123"}
    assert syn["keep1"]["exemplar_ids"] == ["t3"] and syn["keep1"]["model"] == "qwen-0.5b"
    assert syn["keep1"]["scores"]["near_dup_train"] < 0.7 and syn["keep1"]["rejected_by"] is None
    rej = {r["id"]: r for r in map(json.loads, files.rejected.read_text(encoding="utf-8").splitlines())}
    assert rej["leak"]["rejected_by"] == "leakage" and rej["bot"]["rejected_by"] == "boilerplate"


def test_corpus_refuses_rejected_rows_as_accepted(tmp_path):
    _, rejected = _filtered()
    with pytest.raises(ValueError):
        write_corpus(tmp_path, TRAIN, rejected, [])
    assert not (tmp_path / "corpus.tsv").exists()


def test_diversity_metrics():
    assert distinct_n(["aaaa"], 1) == 0.25 and distinct_n(["abcd", "abcd"], 2) == 0.5
    assert mean_pairwise_similarity(["我今天好累啊"] * 3) == pytest.approx(1.0)
    assert mean_pairwise_similarity(["我今天好累啊", "明天去公园玩"]) == 0.0
    assert mean_max_similarity([TRAIN.rows[0].text], TRAIN.texts) == pytest.approx(1.0)
    div = diversity({3: [NORMAL, NORMAL], 4: ["完全不同的一句话在这里"]}, TRAIN.texts)
    assert list(div) == ["3", "4", "all"] and div["all"].n == 3
    assert div["3"].self_similarity == pytest.approx(1.0) and div["4"].self_similarity == 0.0


def test_reports_render_counts_rejections_and_samples():
    kept, rejected = _filtered()
    before = {lv: TRAIN.labels.count(lv) for lv in range(11)}
    after = dict(before)
    for r in kept:
        after[r.label] += 1
    div = diversity({3: [r.text for r in kept]}, TRAIN.texts)
    samples = pick_samples(kept + rejected, per_level=2)
    data = report_data(before, after, rejection_counts(rejected), div, samples)
    md = render("augment.md.jinja", **data)
    assert "| 3 | 1 | 1 | 2 |" in md and "| leakage | 1 |" in md and "| total | 2 |" in md
    assert NORMAL in md and "rejected: boilerplate" in md
    page = render("augment.html.jinja", **data)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "<td>leakage</td><td>1</td>" in page and NORMAL in page


def test_html_escapes_post_text():
    row = SynthRow(id="x", text="分数<60 & 挂科了", label=1, method="llm")
    page = render("augment.html.jinja", **report_data({1: 1}, {1: 2}, {}, {}, [row]))
    assert "分数&lt;60 &amp; 挂科了" in page and "分数<60" not in page
