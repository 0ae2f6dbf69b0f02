"""Experiment ``screening:``: a profile per system fitted on val, cross-fitted when val is the eval split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import DEMO, write
from llm_aug.core.errors import UserError
from llm_aug.experiment import load_config, run_experiment, write_report
from llm_aug.jobs import screening as profiles
from test_experiment import ONE_SVM, make_config

VOTE = {"name": "vote", "kind": "llm", "samples": 3,
        "backend": {"kind": "fake", "replies": ['{"level": 4}', '{"level": 7}', '{"level": 6}', '{"level": 1}']}}
ZERO_SHOT = {"name": "zs", "kind": "llm", "backend": {"kind": "fake", "replies": ['{"level": 4}']}, "limit": 10}
SYSTEMS = [{"name": "majority", "method": "majority", "train_sets": ["original"]},
           {"name": "svm", "method": "tfidf-svm", "grid": ONE_SVM, "train_sets": ["original"]}, VOTE, ZERO_SHOT]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The demo posts as SOS-1K's fine task (val: 3 posts per level, so 3 cross-fit folds)."""
    for split in ("train", "val"):
        write(tmp_path / "data" / "fine" / f"{split}.tsv", (DEMO / f"{split}.tsv").read_text(encoding="utf-8"))
    return tmp_path / "data"


def _config(tmp_path: Path, data_dir: Path, screening: dict, **kw) -> Path:
    return make_config(tmp_path, data_dir, tasks=["fine"], n_boot=20, screening=screening, train_sets={},
                       **{"systems": SYSTEMS, **kw})


def _results(out: Path, step: str) -> dict:
    return json.loads((out / "results" / step / "results.json").read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def fit_calls(monkeypatch) -> list[np.ndarray]:
    """Every probability matrix a screening profile is fitted on."""
    calls: list[np.ndarray] = []
    real = profiles.fit_profile

    def spy(proba, y, *args, **kwargs):
        calls.append(np.array(proba))
        return real(proba, y, *args, **kwargs)

    monkeypatch.setattr(profiles, "fit_profile", spy)
    return calls


def test_val_is_cross_fitted_no_post_screened_by_a_profile_fitted_on_it(tmp_path, data_dir, fit_calls):
    out = tmp_path / "out"
    run = run_experiment(load_config(_config(tmp_path, data_dir, {"targets": ["recall=0.9", 0.95]})), out)
    assert run["counts"]["computed"] == 4
    svm = _results(out, "fine/svm/original/s0")
    block = svm["screening"]
    assert block["calibration_split"] == "val" and block["cross_fit"]["folds"] == 3  # 3 posts per level in demo val
    assert [op["name"] for op in block["operating_points"]] == ["recall>=0.9", "recall>=0.95"]
    for op in block["operating_points"]:
        assert len(op["thresholds"]) == 3 and op["n"] == 33 and 0 <= op["recall"] <= 1 and "valid" in op
    assert set(block["sets"]) == {"marginal", "mondrian", "ordinal"} and block["calibration_after"]["n"] == 33
    assert svm["calibration"]["n"] == 33  # before calibration, from evaluate's block

    saved = json.loads((out / "results/fine/svm/original/s0/screening.json").read_text())["profiles"]
    val_ids = [r["id"] for r in _jsonl(out / "results/fine/svm/original/s0/predictions.jsonl")]
    assert len(saved) == 3 and sorted(i for p in saved for i in p["screened_ids"]) == sorted(val_ids)
    for p in saved:
        assert not set(p["fit_ids"]) & set(p["screened_ids"])
        assert sorted(p["fit_ids"] + p["screened_ids"]) == sorted(val_ids)
    fold_of = {i: p["profile"] for p in saved for i in p["screened_ids"]}
    assert all(row["profile"] == fold_of[row["id"]] for row in _jsonl(out / "results/fine/svm/original/s0/screened.jsonl"))

    # The spy saw what each profile was fitted on: never a screened post's own probabilities.
    proba = {r["id"]: np.array(r["proba"]) for r in _jsonl(out / "results/fine/svm/original/s0/predictions.jsonl")}
    assert len(fit_calls) == 9 and all(len(c) < 33 for c in fit_calls)  # 3 systems with proba x 3 folds
    svm_calls = fit_calls[3:6]  # steps run in config order: majority, svm, vote (zs has no proba)
    assert all(any(np.allclose(c[0], v, atol=1e-5) for v in proba.values()) for c in svm_calls)
    for p, fitted in zip(saved, svm_calls):
        assert len(fitted) == len(p["fit_ids"])
        for i in p["screened_ids"]:
            assert not np.any(np.all(np.abs(fitted - proba[i]) < 1e-5, axis=1)), i


def test_llm_rows_with_and_without_probabilities_and_the_report(tmp_path, data_dir):
    out = tmp_path / "out"
    run_experiment(load_config(_config(tmp_path, data_dir, {"calibrate": "none"})), out)
    vote = _results(out, "fine/vote/zero-shot/s0")
    assert vote["calibration"]["n"] == 33 and vote["screening"]["calibration_after"] is None
    assert len(vote["screening"]["operating_points"]) == 2
    zs = _results(out, "fine/zs/zero-shot/s0")
    assert zs["screening"]["note"] == "no probabilities" and "calibration" not in zs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["screening"]["calibration_split"] == "val" and manifest["screening"]["cross_fit"] is True
    assert manifest["config"]["screening"]["calibrate"] == "none"

    paths = write_report(out)
    md, page = paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")
    assert "### Risk screening" in md and "#### High-risk alerts at each recall target" in md
    assert "| zs | zero-shot | VAL | 10 / 1 |" in md and "no probabilities |" in md
    assert "| vote | recall>=0.9 | val, cross-fitted (3 folds) |" in md
    assert "ECE [95% CI]" in md.split("### Augmentation")[0]  # the results table's column
    assert (out / "report_files" / "fine_reliability.png").stat().st_size > 5000
    assert "![reliability diagram](report_files/fine_reliability.png)" in md
    assert '<section class="screening">' in page and 'alt="reliability diagram"' in page


def test_screening_settings_are_part_of_only_the_screened_steps_keys(tmp_path, data_dir):
    out = tmp_path / "out"
    systems = SYSTEMS[:2]
    run_experiment(load_config(_config(tmp_path, data_dir, {"systems": ["svm"]}, systems=systems)), out)
    assert "screening" not in _results(out, "fine/majority/original/s0")
    again = run_experiment(load_config(_config(tmp_path, data_dir, {"systems": ["svm"]}, systems=systems)), out)
    assert again["counts"]["cached"] == 2
    changed = run_experiment(load_config(_config(tmp_path, data_dir, {"systems": ["svm"], "delta": 0.2},
                                                 systems=systems)), out)
    status = {s["system"]: s["status"] for s in changed["steps"]}
    assert status == {"majority": "cached", "svm": "computed"}
    assert _results(out, "fine/svm/original/s0")["screening"]["delta"] == 0.2


def test_on_test_one_profile_fitted_on_every_val_post_screens_the_test_posts(tmp_path, data_dir):
    write(data_dir / "fine" / "test.tsv", (DEMO / "test.tsv").read_text(encoding="utf-8"))
    cfg = _config(tmp_path, data_dir, {}, systems=SYSTEMS[1:3])
    out = tmp_path / "out"
    run_experiment(load_config(cfg, eval_split="test"), out)
    for step in ("fine/svm/original/s0", "fine/vote/zero-shot/s0"):
        block = _results(out, step)["screening"]
        assert block["cross_fit"] is None and block["n_cal"] == 33
        (saved,) = json.loads((out / "results" / step / "screening.json").read_text())["profiles"]
        val_ids = [r["id"] for r in _jsonl(out / "results" / step / "val_predictions.jsonl")]
        test_ids = [r["id"] for r in _jsonl(out / "results" / step / "predictions.jsonl")]
        assert sorted(saved["fit_ids"]) == sorted(val_ids) and sorted(saved["screened_ids"]) == sorted(test_ids)
        assert not set(val_ids) & set(test_ids)
    assert "val_usage" in _results(out, "fine/vote/zero-shot/s0")
    md = write_report(out)["markdown"].read_text(encoding="utf-8")
    assert "| svm | recall>=0.9 | val |" in md


@pytest.mark.parametrize("screening, message", [
    ({"targets": ["precision=0.9"]}, "only recall targets"),
    ({"targets": [1.5]}, "between 0 and 1"),
    ({"systems": ["nope"]}, "screening.systems: nope is not a system"),
    ({"calibrate": "platt"}, "screening.calibrate"),
    ({"delta": 0}, "screening.delta"),
    ({"typo": 1}, "screening.typo: Extra inputs are not permitted"),
])
def test_screening_config_errors_are_one_line(tmp_path, data_dir, screening, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")) as err:
        load_config(_config(tmp_path, data_dir, screening))
    assert "\n" not in str(err.value)
