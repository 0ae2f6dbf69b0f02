"""Failed rows make the LLM commands exit 4, after writing what succeeded (issue 11).

``augment`` keeps 3 for "a level could not be filled", which outranks 4.
"""

from __future__ import annotations

import json

import jsonlines
import pytest

from clirun import invoke
from conftest import DEMO
from llm_aug.cli.llm import EXIT_ROWS_FAILED
from llm_aug.jobs.augment import EXIT_SHORT
from llm_server import LLMServer
from test_augment_pipeline import random_post

VAL, TRAIN = DEMO / "val.tsv", DEMO / "train.tsv"
N_VAL = 33


def _classify(server: LLMServer, out, *extra) -> object:
    return invoke("classify", "--task", "fine", "--input", VAL, "--output", out, "--backend", "openai",
                  "--base-url", server.url, "--model", "m", "--concurrency", "1", *extra)


def test_classify_with_some_failed_rows_writes_them_and_exits_4(tmp_path):
    out = tmp_path / "runs" / "x" / "predictions.jsonl"
    with LLMServer(reply=lambda body, i: "等级：3") as server:
        server.script("ok", "400", "ok", "400")  # 400: the item's own fault, not retried
        res = _classify(server, out)
    assert res.exit_code == EXIT_ROWS_FAILED == 4, (res.stderr, res.exception)
    assert res.stderr.strip().splitlines()[-1] == f"{N_VAL - 2} ok, 2 failed: see {out} (error field)"
    rows = list(jsonlines.open(out))
    assert len(rows) == N_VAL and sum(r["error"] is not None for r in rows) == 2
    assert json.loads(res.stdout)["n_failed"] == 2  # the summary is still printed


def test_classify_with_every_row_failed_exits_4_not_0(tmp_path):
    out = tmp_path / "p.jsonl"
    with LLMServer(fault_rate=1.0, faults=("400",)) as server:
        res = _classify(server, out)
    assert res.exit_code == 4, (res.stderr, res.exception)
    assert f"0 ok, {N_VAL} failed: see {out} (error field)" in res.stderr


def test_classify_with_no_failures_exits_0(tmp_path):
    with LLMServer(reply=lambda body, i: "等级：3") as server:
        res = _classify(server, tmp_path / "p.jsonl")
    assert res.exit_code == 0 and "failed" not in res.stderr


def test_prompt_compare_exits_4_when_a_prompt_lost_rows(tmp_path):
    out = tmp_path / "cmp"
    with LLMServer(reply=lambda body, i: "等级：3") as server:
        server.script("ok", "400")
        res = invoke("prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task", "fine",
                     "--input", VAL, "--out", out, "--n-boot", "50", "--backend", "openai",
                     "--base-url", server.url, "--model", "m", "--concurrency", "1")
    assert res.exit_code == 4, (res.stderr, res.exception)
    report = json.loads((out / "prompt_compare.json").read_text(encoding="utf-8"))
    assert report["failed"] == {"a": 1, "b": 0} and report["ok"] == {"a": N_VAL - 1, "b": N_VAL}
    assert "failed rows (no prediction): A 1, B 0" in res.stdout
    assert res.stderr.strip().splitlines()[-1] == (
        f"{2 * N_VAL - 1} ok, 1 failed: see {report['predictions']['a']} (error field)")


def _posts(body: dict, index: int) -> str:
    key = json.dumps(body["messages"], ensure_ascii=False)
    return json.dumps([random_post(f"{key}:{i}") for i in range(5)], ensure_ascii=False)


def _augment(server: LLMServer, out, *extra) -> object:
    return invoke("augment", "--method", "llm", "--task", "fine", "--train", TRAIN, "--protect", VAL,
                  "--balance", "8", "--out", out, "--backend", "openai", "--base-url", server.url,
                  "--model", "m", "--concurrency", "1", *extra)


def test_augment_balanced_despite_failed_requests_exits_4(tmp_path):
    with LLMServer(reply=_posts) as server:
        server.script("ok", "400", "400")
        res = _augment(server, tmp_path / "out")
    assert res.exit_code == 4, (res.stderr, res.exception)
    assert (tmp_path / "out" / "corpus.tsv").is_file()
    assert f"ok, 2 failed LLM requests: see {tmp_path / 'out' / 'raw'}/*.jsonl (error field)" in res.stderr


def test_augment_short_level_outranks_failed_requests(tmp_path):
    with LLMServer(fault_rate=1.0, faults=("400",)) as server:
        res = _augment(server, tmp_path / "out", "--max-requests-per-level", "1")
    assert res.exit_code == EXIT_SHORT == 3, (res.stderr, res.exception)
    assert "failed LLM requests" in res.stderr and "not balanced" in res.stderr


@pytest.mark.parametrize("command", [["classify"], ["prompts", "compare"], ["augment"]])
def test_exit_codes_are_in_the_help(command):
    res = invoke(*command, "--help")
    text = " ".join(res.stdout.split())
    assert "Exit codes" in text and "4 " in text and "130 interrupted" in text
