"""Job results have one shape (issue 20): typed models on ``jobs.results.JobResult``.

Every job of ``llm_aug.jobs`` returns a JobResult; its JSON reads back into the same
result; where a job writes a JSON report, the file holds exactly the result's JSON (same
keys, same order); keys a report holds only sometimes stay absent rather than null.
"""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path

import pytest

from llm_aug import jobs
from llm_aug.jobs.results import JobResult
from llm_aug.llm.batch import BatchDeferred, BatchMode
from llm_server import LLMServer

REPLIES = ["等级：3", "等级：5", "无法判断", "等级：0"]
DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def _fake(tmp_path: Path, name: str = "cache") -> dict:
    return {"backend": {"kind": "fake", "replies": REPLIES},
            "runner": {"cache_path": str(tmp_path / f"{name}.sqlite"), "quiet": True}}


def _round_trips(result: JobResult) -> dict:
    """The result's JSON: plain JSON data that reads back into an equal result of its type."""
    assert isinstance(result, JobResult)
    data = result.to_json()
    assert data == result.model_dump(mode="json")
    text = json.dumps(data, ensure_ascii=False)
    again = type(result).model_validate(json.loads(text))
    assert type(again) is type(result) and again.to_json() == data
    return data


def _file_is_the_result(path: Path, result: JobResult) -> None:
    """A written report holds the result's JSON, key for key and in order."""
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == result.to_json()
    assert list(written) == list(result.to_json())


def _jobs() -> list[str]:
    return [name for name in jobs.__all__ if inspect.isfunction(getattr(jobs, name))]


@pytest.mark.parametrize("name", _jobs())
def test_every_job_is_declared_to_return_a_job_result(name):
    hints = typing.get_type_hints(getattr(jobs, name))
    assert isinstance(hints["return"], type) and issubclass(hints["return"], JobResult), hints["return"]


def test_every_exported_result_type_is_a_job_result():
    types = [getattr(jobs, n) for n in jobs.__all__ if inspect.isclass(getattr(jobs, n))]
    results = [t for t in types if t.__name__.endswith(("Result", "Report", "Status"))]
    assert len(results) >= 9 and all(issubclass(t, JobResult) for t in results), results


def test_classify_result_and_its_dry_run(tmp_path, demo_dir):
    real = jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "p.jsonl", llm=_fake(tmp_path))
    data = _round_trips(real)
    assert real.n_ok == 33 and real.n_failed == 0 and not real.dry_run
    assert data["output"] == str(tmp_path / "p.jsonl") and data["summary"] == real.summary
    dry = jobs.classify("fine", demo_dir / "val.tsv", tmp_path / "d.jsonl", llm=_fake(tmp_path, "d"), dry_run=True)
    assert _round_trips(dry)["dry_run"] is True and not (tmp_path / "d.jsonl").exists()


@pytest.mark.parametrize("html", [False, True])
def test_compare_report_is_prompt_compare_json(tmp_path, demo_dir, html):
    out = tmp_path / "cmp"
    report = jobs.compare_prompts("classify/scene.v1", "classify/scene_levels.v1", "fine", demo_dir / "val.tsv",
                                  llm=_fake(tmp_path), out=out, n_boot=20, html=html)
    data = _round_trips(report)
    _file_is_the_result(out / "prompt_compare.json", report)
    assert list(data) == ["a", "b", "n", "deltas", "per_class_f1_delta", "invalid_rate", "flips", "flips_file",
                          "ok", "failed", "predictions"] + (["html"] if html else [])
    assert report.ok.a + report.failed.a == report.n and report.predictions.b.is_file()
    assert set(report.deltas) >= {"accuracy", "weighted_f1"} and report.deltas["accuracy"].p_value <= 1


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A majority model on the demo corpus and its predictions of the test split."""
    out = tmp_path_factory.mktemp("model")
    trained = jobs.train_model("fine", DEMO / "train.tsv", DEMO / "val.tsv", out / "m", method="majority")
    return trained, jobs.predict_file(trained.out_dir, DEMO / "test.tsv", out / "test.jsonl")


def test_train_and_predict_results(model):
    trained, predicted = model
    data = _round_trips(trained)
    assert trained.method == "majority" and data["selection"][0]["params"] == trained.selection[0].params
    assert _round_trips(predicted)["n_rows"] == 33 == len(predicted.output.read_text().splitlines())


def test_train_seeds_result_is_seeds_json(tmp_path, demo_dir):
    seeds = jobs.train_seeds("fine", demo_dir / "train.tsv", demo_dir / "val.tsv", tmp_path, seeds=[1, 2],
                             method="majority")
    _round_trips(seeds)
    _file_is_the_result(tmp_path / "seeds.json", seeds)
    assert set(seeds.val_weighted_f1) == {1, 2} and seeds.std == 0.0


@pytest.mark.parametrize("task", ["fine", "binary"])
def test_evaluate_result_is_results_json_with_the_keys_of_its_scheme(model, demo_dir, tmp_path, task):
    gold, preds = demo_dir / "test.tsv", model[1].output
    if task == "binary":  # the same posts collapsed at 6, scored as the binary task
        rows = [json.loads(line) for line in preds.read_text().splitlines()]
        preds = tmp_path / "bin.jsonl"
        preds.write_text("".join(json.dumps({"id": r["id"], "pred": int(r["pred"] >= 6)}) + "\n" for r in rows))
        lines = gold.read_text(encoding="utf-8").splitlines()
        gold = tmp_path / "bin.tsv"
        gold.write_text("\n".join([lines[0]] + [f"{t}\t{int(int(lab) >= 6)}" for t, lab in
                                               (line.rsplit("\t", 1) for line in lines[1:])]) + "\n",
                        encoding="utf-8")
    result = jobs.evaluate_predictions(preds, gold, task=task, out_dir=tmp_path / "ev", n_boot=20)
    data = _round_trips(result)
    _file_is_the_result(tmp_path / "ev" / "results.json", result)
    ordinal = {"mae", "qwk", "within1", "ordinal_n"}
    assert ordinal & set(data) == (ordinal if task == "fine" else set())
    assert "binary" not in data and result.n == 33 and set(result.ci) >= {"accuracy", "weighted_f1"}


def test_evaluate_binary_block_keeps_its_ci_only_when_bootstrapped(model, demo_dir, tmp_path):
    trained, _ = model
    preds = jobs.predict_file(trained.out_dir, demo_dir / "val.tsv", tmp_path / "val.jsonl").output
    lines = (demo_dir / "val.tsv").read_text(encoding="utf-8").splitlines()
    binary = tmp_path / "bin.tsv"
    binary.write_text("\n".join([lines[0]] + [f"{t}\t{int(int(lab) >= 6)}" for t, lab in
                                             (line.rsplit("\t", 1) for line in lines[1:])]) + "\n",
                      encoding="utf-8")
    for n_boot in (0, 20):
        result = jobs.evaluate_predictions(preds, demo_dir / "val.tsv", binary_gold=binary,
                                           out_dir=tmp_path / str(n_boot), n_boot=n_boot)
        block = _round_trips(result)["binary"]
        assert ("ci" in block) == bool(n_boot) and result.binary is not None and result.binary.threshold == 6


def test_select_result_is_selection_json(tmp_path, demo_dir):
    result = jobs.select_by_cv("fine", demo_dir / "train.tsv", demo_dir / "val.tsv", ["majority", "tfidf-lr"],
                               tmp_path, folds=2, repeats=1)
    _round_trips(result)
    _file_is_the_result(tmp_path / "selection.json", result)
    assert result.best == result.ranking[0].method and len(result.ranking[1].folds) == 2


def test_augment_result(tmp_path, demo_dir):
    cfg = jobs.AugmentConfig(method="synonym", task="fine", train=demo_dir / "train.tsv", out=tmp_path / "aug",
                             balance="10", protect=[demo_dir / "val.tsv"])
    result = jobs.run_augment(cfg)
    data = _round_trips(result)
    assert data["after"] == {str(k): v for k, v in result.after.items()} and result.exit_code == 0


def _answer(srv: LLMServer, run: Path, files: list[str], out: Path) -> Path:
    """What ``vllm run-batch -o`` would write for the run's request files, answered by the server."""
    return srv.answer_batch_files([run / name for name in files], out)


def _llm(url: str, cache: Path) -> dict:
    return {"backend": {"kind": "openai", "model": "m", "base_url": url},
            "runner": {"cache_path": str(cache), "quiet": True}}


def test_batch_status_and_collect_results_round_trip(tmp_path, demo_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    run = tmp_path / "run"
    with LLMServer(reply=lambda body, i: f"等级：{i % 11}") as srv:
        with pytest.raises(BatchDeferred) as first:
            jobs.compare_prompts("classify/scene.v1", "classify/scene_levels.v1", "fine", demo_dir / "val.tsv",
                                 llm=_llm(srv.url, tmp_path / "c.sqlite"), out=tmp_path / "cmp", n_boot=20,
                                 batch=BatchMode("export", run))
        status = jobs.batch_status(run)
        assert _round_trips(status)["files"][0]["status"] == "exported" and not status.files[0].collected
        # the first collect continues compare, which stops again for prompt B's cycle
        done = jobs.batch_collect(run, results=[_answer(srv, run, first.value.files, tmp_path / "r1.jsonl")])
        data = _round_trips(done)
        assert done.job_result is None and done.deferred is not None and data["deferred"]["cycle"] == 2
        assert type(done).model_validate(data).deferred.files == done.deferred.files
        last = jobs.batch_collect(run, results=[_answer(srv, run, done.deferred.files, tmp_path / "r2.jsonl")])
    data = _round_trips(last)
    again = type(last).model_validate(data)
    assert type(again.job_result) is type(last.job_result) and again.job_result.n == 33  # noqa: E721
    assert data["job_result"] == json.loads((tmp_path / "cmp" / "prompt_compare.json").read_text())
