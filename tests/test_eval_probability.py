"""evaluate on predictions with proba / levels / alerts: the calibration, conformal and operating-point blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clirun import assert_ok, invoke
from conftest import DEMO
from llm_aug.core.errors import UserError
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task
from llm_aug.eval.calibration import calibration_metrics
from llm_aug.jobs.evaluate import EvaluateResult, evaluate_predictions, format_results

GOLD = DEMO / "val.tsv"
BLOCKS = ("calibration", "conformal", "operating_points")


def _rows(seed: int = 0) -> list[dict]:
    """One row per demo val post: a noisy but informative proba, a level set, two alerts."""
    data = load_dataset(GOLD, scheme_for_task("fine"))
    rng = np.random.default_rng(seed)
    rows = []
    for i, (rid, y) in enumerate(zip(data.ids, data.labels)):
        p = rng.dirichlet(np.ones(11))
        p[y] += rng.random()
        p /= p.sum()
        levels = [y] if i % 3 else [(y + 2) % 11]  # every third set misses its gold level
        rows.append({"id": rid, "pred": int(p.argmax()), "proba": [round(float(x), 6) for x in p],
                     "levels": levels, "alerts": {"recall>=0.9": bool(p[6:].sum() > 0.4), "recall>=0.95": True}})
    return rows


def _write(path: Path, rows: list[dict], drop: tuple[str, ...] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k not in drop}) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_proba_adds_calibration_and_reliability_png_and_nothing_else_changes(tmp_path):
    rows = _rows()
    rows[4]["proba"] = rows[9]["proba"] = None  # failed LLM answers: counted, left out
    with_p = evaluate_predictions(_write(tmp_path / "a" / "p.jsonl", rows), GOLD, task="fine", n_boot=100)
    without = evaluate_predictions(_write(tmp_path / "b" / "p.jsonl", rows, drop=("proba", "levels", "alerts")),
                                   GOLD, task="fine", n_boot=100)
    assert not (tmp_path / "b" / "reliability.png").exists()
    assert (tmp_path / "a" / "reliability.png").stat().st_size > 5000
    a, b = (json.loads((tmp_path / d / "results.json").read_text()) for d in "ab")
    assert not set(BLOCKS) & set(b) and set(BLOCKS) <= set(a)
    # the blocks are purely added: every other key is the same, in the same order
    assert {k: v for k, v in a.items() if k not in (*BLOCKS, "predictions")} == \
           {k: v for k, v in b.items() if k != "predictions"}
    assert [k for k in a if k not in BLOCKS] == list(b)
    cal = a["calibration"]
    assert cal["n"] == 31 and cal["n_without_proba"] == 2
    scored = [r for r in rows if r["proba"] is not None]
    column = {label: j for j, label in enumerate(range(11))}
    gold = {r.id: r.label for r in load_dataset(GOLD, scheme_for_task("fine")).rows}
    want = calibration_metrics(np.array([r["proba"] for r in scored]), [column[gold[r["id"]]] for r in scored],
                               n_boot=100)
    assert cal["ece"] == pytest.approx(want["ece"], abs=1e-5) and cal["brier"] == pytest.approx(want["brier"], abs=1e-5)
    assert cal["ci"]["ece"][0] <= cal["ci"]["ece"][1] and len(cal["ece_if_calibrated"]) == 2
    assert sum(b_["count"] for b_ in cal["curve"]) == 31 and len(cal["curve"]) == 15
    assert with_p.calibration is not None and with_p.calibration.n == 31 and without.calibration is None
    assert EvaluateResult.model_validate(a).to_json() == with_p.to_json()


def test_levels_give_coverage_per_level_and_alerts_give_operating_points(tmp_path):
    rows = _rows()
    rows[0].pop("levels")
    rows[0].pop("alerts")
    res = evaluate_predictions(_write(tmp_path / "p.jsonl", rows), GOLD, task="fine", n_boot=0).to_json()
    gold = {r.id: r.label for r in load_dataset(GOLD, scheme_for_task("fine")).rows}
    covered = [gold[r["id"]] in r["levels"] for r in rows[1:]]
    sets = res["conformal"]
    assert sets["n"] == 32 and sets["n_without_levels"] == 1 and sets["mean_size"] == 1.0
    assert sets["coverage"] == pytest.approx(np.mean(covered)) and sets["coverage"] < 0.8
    for level, row in sets["per_level"].items():
        mine = [c for r, c in zip(rows[1:], covered) if gold[r["id"]] == int(level)]
        assert row["n"] == len(mine) and row["coverage"] == pytest.approx(np.mean(mine))
    ops = {op["name"]: op for op in res["operating_points"]}
    assert list(ops) == ["recall>=0.9", "recall>=0.95"]
    always = ops["recall>=0.95"]
    assert always["flagged"] == 33 and always["recall"] == 1.0 and always["alert_rate_per_1000"] == 1000.0
    high = [gold[r["id"]] >= 6 for r in rows]
    flagged = [True] + [r["alerts"]["recall>=0.9"] for r in rows[1:]]  # row 0 has no alerts: flagged
    hits = sum(f and h for f, h in zip(flagged, high))
    assert ops["recall>=0.9"]["unscored"] == 1 and ops["recall>=0.9"]["recall"] == pytest.approx(hits / sum(high))
    assert ops["recall>=0.9"]["missed"] == sum(high) - hits
    # no bootstrap: point values only
    assert res["calibration"]["ci"] == {} and "ece_if_calibrated" not in res["calibration"]
    text = format_results(res, tmp_path)
    assert "coverage per level" in text and "recall>=0.9: recall" in text and "ECE " in text
    assert text.endswith(f"{tmp_path / 'confusion.png'} and {tmp_path / 'reliability.png'}")


def test_a_proba_of_the_wrong_width_gives_no_block_and_bad_levels_are_one_error(tmp_path, caplog):
    rows = _rows()
    for r in rows:
        r["proba"] = r["proba"][:10]
    res = evaluate_predictions(_write(tmp_path / "p.jsonl", rows, drop=("levels", "alerts")), GOLD, task="fine",
                               n_boot=0)
    assert res.calibration is None and "10 columns, the scheme has 11 labels" in caplog.text
    rows[3]["levels"] = [4, 11]
    res = invoke("evaluate", _write(tmp_path / "q.jsonl", rows, drop=("alerts",)), "--gold", GOLD, "--task", "fine")
    assert isinstance(res.exception, UserError) and "'levels' must be a list of the scheme's labels" in str(res.exception)


def test_cli_evaluate_prints_and_json_carries_the_blocks(tmp_path):
    preds = _write(tmp_path / "p.jsonl", _rows())
    out = assert_ok(invoke("evaluate", preds, "--gold", GOLD, "--n-boot", "50"))
    assert "calibration (n=33 with proba" in out.stdout and "ECE " in out.stdout and "level sets (n=33)" in out.stdout
    assert "reliability.png" in out.stdout.splitlines()[-1]
    data = json.loads(assert_ok(invoke("evaluate", preds, "--gold", GOLD, "--n-boot", "50", "--json")).stdout)
    assert set(BLOCKS) <= set(data) and data["calibration"]["n"] == 33


def test_compare_page_shows_ece_and_the_screening_section_only_with_probabilities(tmp_path):
    from llm_aug.eval.report import compare_runs

    runs = []
    for name, rows in (("with-proba", _rows(0)), ("plain", [{k: v for k, v in r.items() if k == "id" or k == "pred"}
                                                            for r in _rows(1)])):
        runs.append(_write(tmp_path / name / "predictions.jsonl", rows).parent)
        evaluate_predictions(runs[-1] / "predictions.jsonl", GOLD, task="fine", n_boot=50)
    both = compare_runs(runs, tmp_path / "both", n_boot=50)
    md = both["markdown"]
    head = md.split("\n\n")[2].splitlines()[0]
    assert "ECE [95% CI]" in head and "| plain | 33 |" in md and "no probabilities" in md
    ece = json.loads((runs[0] / "results.json").read_text())["calibration"]["ece"]
    assert f"| with-proba | 33 | {ece:.3f} [" in md  # the calibration table's row
    assert "## Risk screening" in md and "### High-risk alerts at each recall target" in md
    assert (tmp_path / "both" / "reliability.png").is_file()
    page = both["html"].read_text(encoding="utf-8")
    assert '<section class="screening">' in page and 'alt="reliability diagram"' in page
    plain = compare_runs(runs[1:], tmp_path / "plain", n_boot=50)
    assert "ECE" not in plain["markdown"] and "Risk screening" not in plain["markdown"]
    assert not (tmp_path / "plain" / "reliability.png").exists()
    assert '<section class="screening">' not in plain["html"].read_text(encoding="utf-8")
