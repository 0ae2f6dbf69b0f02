"""Prediction files, evaluate/write_results and compare_runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.predictions import align, read_predictions
from llm_aug.eval.render import FONT_STACK
from llm_aug.eval.report import compare_runs
from llm_aug.eval.results import score_predictions, write_results

SOS = load_scheme("sos11")
BIN = load_scheme("binary")


def _gold(n: int = 60, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset([Row(f"id{i:03d}", f"post {i}", int(lab)) for i, lab in enumerate(rng.integers(0, 11, n))])


def _write_preds(path: Path, ids: list[str], preds: list) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, p in zip(ids, preds):
            fh.write(json.dumps({"id": i, "text": "t", "pred": p, "raw": str(p)}) + "\n")
    return path


def _noisy(gold: Dataset, p_right: float, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [g if rng.random() < p_right else (g + 4) % 11 for g in gold.labels]


# --- read_predictions / align ---------------------------------------------------


def test_read_predictions_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "a", "pred": 1}\n{"id": "b", "pred": \n', encoding="utf-8")
    with pytest.raises(UserError, match=r"p\.jsonl:2: invalid JSON"):
        read_predictions(bad)
    bad.write_text('{"id": "a", "pred": 1}\n\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"p\.jsonl:3: missing key 'pred'"):
        read_predictions(bad)
    bad.write_text('{"pred": 1}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"p\.jsonl:1: missing key 'id'"):
        read_predictions(bad)
    bad.write_text('{"id": "a", "pred": "3"}\n', encoding="utf-8")
    with pytest.raises(UserError, match="integer label or null"):
        read_predictions(bad)
    bad.write_text('{"id": "a", "pred": 1}\n{"id": "a", "pred": 2}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r":2: duplicate id 'a' \(first at line 1\)"):
        read_predictions(bad)
    with pytest.raises(UserError, match="not found"):
        read_predictions(tmp_path / "missing.jsonl")


def test_read_predictions_ok(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 7, "pred": null, "proba": [0.5, 0.5], "error": "unparseable"}\n')
    (rec,) = read_predictions(path)
    assert rec["id"] == "7" and rec["pred"] is None and rec["error"] == "unparseable"


def test_align_orders_by_gold_and_reports_mismatches():
    gold = _gold(8)
    preds = [{"id": i, "pred": 1} for i in reversed(gold.ids)]
    g, p, ids = align(preds, gold)
    assert ids == gold.ids and g == gold.labels and p == [1] * 8
    with pytest.raises(UserError, match=r"2 of 8 gold items have no prediction \('id000', 'id001'\)"):
        align(preds[:-2], gold, source="run/p.jsonl")
    with pytest.raises(UserError, match=r"1 prediction\(s\) have ids not in .*'zzz'"):
        align([*preds, {"id": "zzz", "pred": 0}], gold)
    with pytest.raises(UserError, match="duplicate id"):
        align([*preds, {"id": "id003", "pred": 0}], gold)
    unlabelled = Dataset([Row("a", "x", None)])
    with pytest.raises(UserError, match="no gold label"):
        align([{"id": "a", "pred": 1}], unlabelled)


# --- evaluate / write_results ----------------------------------------------------


def test_evaluate_and_write_results(tmp_path):
    gold = _gold(60)
    preds = _noisy(gold, 0.7, 1)
    preds[0] = None
    pred_path = _write_preds(tmp_path / "predictions.jsonl", gold.ids, preds)
    binary = Dataset([Row(r.id, r.text, int(r.label >= 6)) for r in gold.rows])
    res = score_predictions(pred_path, gold, SOS, binary_gold=binary, n_boot=200, seed=0)
    assert res["scheme"] == "sos11" and res["task"] == "fine" and res["n"] == 60
    assert res["invalid_rate"] == pytest.approx(1 / 60)
    assert set(res["ci"]) == {"accuracy", "weighted_f1", "macro_f1", "mae", "qwk", "within1"}
    for metric, (lo, hi) in res["ci"].items():
        assert lo <= res[metric] <= hi, metric
    assert set(res["binary"]["ci"]) == {"accuracy", "weighted_f1", "macro_f1"}
    out = write_results(tmp_path / "run", res, SOS, name="my system")
    data = json.loads(out.read_text())
    assert data["system"] == "my system" and data["predictions"] == str(pred_path)
    assert data["items"]["pred"][0] is None and data["items"]["ids"] == gold.ids
    assert data["confusion"] == res["confusion"]
    assert (tmp_path / "run" / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_binary_gold_must_cover_items(tmp_path):
    gold = _gold(10)
    pred_path = _write_preds(tmp_path / "p.jsonl", gold.ids, gold.labels)
    partial = Dataset([Row(r.id, r.text, 0) for r in gold.rows[:7]])
    with pytest.raises(UserError, match="3 of 10 items have no binary gold"):
        score_predictions(pred_path, gold, SOS, binary_gold=partial, n_boot=0)


# --- compare_runs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def built_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    gold = _gold(120)
    dirs = []
    for name, p_right in (("strong", 0.9), ("weak", 0.4), ("also_weak", 0.45)):
        run = root / name
        run.mkdir()
        pred_path = _write_preds(run / "predictions.jsonl", gold.ids, _noisy(gold, p_right, len(name)))
        write_results(run, score_predictions(pred_path, gold, SOS, n_boot=200), SOS)
        dirs.append(run)
    return dirs


@pytest.fixture()
def runs(built_runs, tmp_path) -> list[Path]:
    """Fresh copies of the evaluated runs (tests may edit them)."""
    return [Path(shutil.copytree(d, tmp_path / "runs" / d.name)) for d in built_runs]


def test_compare_runs_writes_markdown_and_html(runs, tmp_path):
    out = compare_runs(runs, tmp_path / "cmp", n_boot=300)
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert md == out["markdown"]
    for name in ("strong", "weak", "also_weak"):
        assert name in md
    assert "strong (best)" in md and "qwk" in md and "mae" in md
    rows = {r["system"]: r for r in out["rows"]}
    assert rows["strong"]["best"] and rows["strong"]["delta"] is None
    assert rows["weak"]["delta"] < 0 and rows["weak"]["p_value"] < 0.05
    assert rows["weak"]["paired_n"] == 120
    html = out["html"].read_text()
    for name in ("strong", "weak", "also_weak"):
        assert name in html
    # bar chart + 3 confusion matrices, all embedded; nothing fetched from elsewhere
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)) == 4
    assert not re.search(r"(src|href)=\"(?!data:)", html)
    assert FONT_STACK in html


def test_compare_runs_uses_system_name_and_no_html(runs, tmp_path):
    data = json.loads((runs[1] / "results.json").read_text())
    data["system"] = "gpt|prompt"
    (runs[1] / "results.json").write_text(json.dumps(data))
    out = compare_runs(runs[:2], tmp_path / "cmp", metric="mae", html=False, n_boot=100)
    assert out["html"] is None and not (tmp_path / "cmp" / "comparison.html").exists()
    assert "gpt\\|prompt" in out["markdown"]
    assert [r["best"] for r in out["rows"]] == [True, False]  # lower MAE wins


def test_compare_runs_errors(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no results.json"):
        compare_runs([runs[0], empty], tmp_path / "cmp")
    data = json.loads((runs[1] / "results.json").read_text())
    data["scheme"] = "binary"
    (runs[1] / "results.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="different label schemes"):
        compare_runs(runs, tmp_path / "cmp")
    with pytest.raises(UserError, match="unknown metric"):
        compare_runs(runs[:1], tmp_path / "cmp", metric="f2")


def test_charts_draw_chinese_system_names_with_a_cjk_font(tmp_path):
    import warnings

    from llm_aug.eval.plots import cjk_fonts, plot_metric_bars

    if not cjk_fonts():
        pytest.skip("no CJK font installed (Debian: fonts-noto-cjk)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_metric_bars(["强基线模型", "弱基线对照组"], [0.5, 0.4], [None, None], tmp_path / "b.png", "weighted_f1")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:3]
