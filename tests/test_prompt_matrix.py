"""Issue 22: the prompt matrix, the regression gate and the prompt history.

Against the loopback server with a reply that depends on the prompt and the model:
each post says its own level, a prompt carrying the marker 【劣】 gets a wrong level on
two posts in three, and model ``m-weak`` gets a wrong level on one post in four.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import pytest

from clirun import invoke
from conftest import REPO, write
from llm_aug.eval.bootstrap import holm, worse_p_value
from llm_aug.jobs.compare_matrix import pick_baseline, plan_cells
from llm_aug.jobs.prompt_history import append_records, leaderboard, read_history, version_changes
from llm_server import LLMServer

_POST = re.compile(r"<post>\n(.*?)\n</post>", re.S)
_LEVEL = re.compile(r"风险(\d+)级")


def reply(body: dict, index: int) -> str:
    """The post's own level, spoiled for the 【劣】 prompt and for model m-weak."""
    text = "\n".join(m["content"] for m in body["messages"])
    post = _POST.findall(text)[-1]
    level, i = int(_LEVEL.search(post)[1]), int(re.search(r"帖子(\d+)", post)[1])
    if "【劣】" in text and i % 3:
        level = (level + 5) % 11
    if body.get("model") == "m-weak" and i % 4 == 0:
        level = (level + 3) % 11
    return f"等级：{level}"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """val.tsv (66 posts, 6 per level) and three prompt files: good.v1, good.v2 (same replies), bad.v1."""
    rows = "".join(f"帖子{i}：我今天风险{i % 11}级。\t{i % 11}\n" for i in range(66))
    scene = (REPO / "prompts" / "classify" / "scene.v1.jinja").read_text(encoding="utf-8")
    d = tmp_path / "classify"  # the family is the folder's name
    return {"val": write(tmp_path / "val.tsv", "comment\tmyLabel\n" + rows),
            "good1": write(d / "good.v1.jinja", scene),
            "good2": write(d / "good.v2.jinja", scene.replace("<|system|>\n", "<|system|>\n【同】\n")),
            "bad": write(d / "bad.v1.jinja", scene.replace("<|system|>\n", "<|system|>\n【劣】\n"))}


def _llm(url: str, *models: str) -> list[str]:
    out = ["--backend", "openai", "--base-url", url]
    for m in models or ("m1",):
        out += ["--model", m]
    return out


def _compare(files, out, url, *args, models=("m1",)):
    return invoke("prompts", "compare", *args, "--task", "fine", "--input", files["val"], "--n-boot", 200,
                  "--out", out, *_llm(url, *models))


def test_holm_matches_a_hand_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped
    assert holm([]) == []


def test_worse_p_value_is_one_sided():
    gold = [i % 3 for i in range(90)]
    worse = [g if i % 2 else (g + 1) % 3 for i, g in enumerate(gold)]
    assert worse_p_value(gold, worse, gold, "accuracy", n_boot=300) < 0.01
    assert worse_p_value(gold, gold, worse, "accuracy", n_boot=300) > 0.99  # better is never "worse"
    assert worse_p_value(gold, worse, gold, "accuracy", margin=0.9, n_boot=300) > 0.5


def test_cells_and_baseline_names():
    cells = plan_cells(["a.v1", "b.v1"], ["m"], [0, 3], ["random", "similar"])
    assert [c.label for c in cells] == ["a.v1@m@0", "a.v1@m@3/random", "a.v1@m@3/similar",
                                        "b.v1@m@0", "b.v1@m@3/random", "b.v1@m@3/similar"]
    assert pick_baseline(cells, None) == 0
    assert pick_baseline(cells, "4") == 4
    assert pick_baseline(cells, "b.v1@m@3/similar") == 5


def test_matrix_cells_equal_single_runs(files, tmp_path):
    out = tmp_path / "mx"
    with LLMServer(reply=reply) as srv:
        res = _compare(files, out, srv.url, files["good1"], files["bad"], "--html", models=("m1", "m-weak"))
        assert res.exit_code == 0, res.output
        single = tmp_path / "single.jsonl"
        one = invoke("classify", "--task", "fine", "--input", files["val"], "--output", single,
                     "--prompt", files["bad"], *_llm(srv.url, "m-weak"))
        assert one.exit_code == 0, one.output
    matrix = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    labels = [c["label"] for c in matrix["cells"]]
    assert len(labels) == 4 and matrix["baseline"] == labels[0]
    cell = next(c for c in matrix["cells"] if c["model"] == "m-weak" and "bad" in c["prompt"])
    assert Path(cell["predictions"]).read_bytes() == single.read_bytes()
    base = matrix["cells"][0]
    assert base["metrics"]["accuracy"] == 1.0 and base["vs_baseline"] is None
    assert cell["metrics"]["accuracy"] < 0.5 and cell["vs_baseline"]["accuracy"]["delta"] < -0.5
    assert all(c["vs_baseline"]["weighted_f1"]["p_holm"] >= c["vs_baseline"]["weighted_f1"]["p_value"]
               for c in matrix["cells"][1:])
    assert all(c["cost"]["requests"] == 66 for c in matrix["cells"])
    assert Path(cell["flips_file"]).is_file() and cell["flips"] > 30
    page = (out / "matrix.html").read_text(encoding="utf-8")
    assert "<script>" in page and "flips.jsonl" in page and "http" not in page.split("<body>")[1]
    assert "| " + labels[0] in res.output  # the Markdown table is printed


def test_gate_exits_5_on_a_worse_prompt_and_0_on_an_equal_one(files, tmp_path):
    with LLMServer(reply=reply) as srv:
        worse = _compare(files, tmp_path / "w", srv.url, files["good1"], files["bad"],
                         "--fail-if-worse", "weighted_f1:0.01", "--json")
        equal = _compare(files, tmp_path / "e", srv.url, files["good1"], files["good2"],
                         "--fail-if-worse", "weighted_f1:0.01", "--json")
    assert worse.exit_code == 5, worse.output
    assert equal.exit_code == 0, equal.output
    verdict = json.loads(equal.stdout)["gate"]
    assert verdict["passed"] and verdict["worse"] == []
    assert json.loads(worse.stdout)["gate"]["worse"] == [f"{files['bad']}@m1@0"]


def test_two_prompts_append_history_and_history_prints_the_change(files, tmp_path):
    hist = tmp_path / "h.jsonl"
    with LLMServer(reply=reply) as srv:
        ab = _compare(files, tmp_path / "ab", srv.url, files["good1"], files["good2"], "--history", hist)
        assert ab.exit_code == 0, ab.output
        assert (tmp_path / "ab" / "prompt_compare.json").is_file()  # the A/B path, as before
        mx = _compare(files, tmp_path / "mx", srv.url, files["bad"], files["good1"], "--history", hist,
                      "--eval-split", "test")
        assert mx.exit_code == 0, mx.output
    records = read_history(hist)
    assert len(records) == 4
    assert [r["eval_split"] for r in records] == ["given file", "given file", "test", "test"]
    assert all(len(r["prompt_sha256"]) == 64 and r["metrics"]["weighted_f1"]["ci"] for r in records)
    shown = invoke("prompts", "history", "--history", hist)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.index("good.v") < shown.stdout.index("bad.v1")  # best first
    assert "good.v1.jinja -> " in shown.stdout and "good.v2.jinja" in shown.stdout


def _append_many(path: str, who: int) -> None:
    for k in range(100):
        append_records(path, [{"prompt": f"p{who}.v1", "metrics": {"accuracy": {"value": k / 100}},
                               "pad": "x" * 3000, "k": k, "who": who}] * 2)


def test_history_survives_concurrent_writers(tmp_path):
    path = tmp_path / "hist.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), who)) for who in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400 and all(json.loads(line)["pad"] == "x" * 3000 for line in lines)
    records = read_history(path)
    assert sorted(r["who"] for r in records).count(1) == 200
    top = leaderboard(records, "accuracy")
    assert top[0]["metrics"]["accuracy"]["value"] == 0.99
    assert version_changes(top, "accuracy") == []


def test_matrix_in_batch_mode_equals_live(files, tmp_path, monkeypatch):
    """--batch submit: one cycle per cell; batch collect continues the matrix to the live result."""
    from batch_server import BatchServer
    from llm_aug.jobs.batch import batch_collect
    from llm_aug.llm.config import API_KEY_ENV

    for name in API_KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    args = [files["good1"], files["good2"], files["bad"], "--shots", "0"]
    with LLMServer(reply=reply) as srv:
        assert _compare(files, tmp_path / "live", srv.url, *args, models=("m-weak",)).exit_code == 0
    run = tmp_path / "run"
    with BatchServer(reply=reply) as srv:
        two = _compare(files, tmp_path / "b2", srv.url, *args, "--batch", "submit", models=("m1", "m-weak"))
        assert "one model per run" in str(two.exception)  # a UserError: exit 2 from the real CLI
        res = _compare(files, tmp_path / "b", srv.url, *args, "--batch", "submit", "--batch-dir", run,
                       models=("m-weak",))
        assert res.exit_code == 0, res.output
        for _ in range(2):  # three cells: three cycles, the first two continued through the API
            done = batch_collect(run)
            assert done.deferred is not None and done.job_result is None
        printed = invoke("batch", "collect", run)  # the last one through the CLI: the table, as live
        assert printed.exit_code == 0, printed.output
        assert "baseline = " in printed.stdout and "| 2 |" in printed.stdout
        assert srv.chat_requests == 0

    def norm(root: Path) -> dict:
        data = json.loads((root / "matrix.json").read_text().replace(str(root), "OUT"))
        for cell in data["cells"]:
            cell["cost"] = None  # requests and seconds differ between live and batch
        return data

    assert norm(tmp_path / "b") == norm(tmp_path / "live")


def test_models_listed_in_the_llm_config_are_matrix_columns(files, tmp_path):
    with LLMServer(reply=reply) as srv:
        cfg = write(tmp_path / "llm.yaml", f"backend: {{kind: openai, base_url: {srv.url}, model: m1}}\n"
                                           "models: [m1, m-weak]\n")
        res = invoke("prompts", "compare", files["good1"], files["good2"], "--task", "fine", "--input",
                     files["val"], "--n-boot", 50, "--out", tmp_path / "o", "--llm-config", cfg, "--json")
    assert res.exit_code == 0, res.output
    cells = json.loads(res.stdout)["cells"]
    assert [c["model"] for c in cells] == ["m1", "m-weak", "m1", "m-weak"]
    assert cells[1]["metrics"]["accuracy"] < cells[0]["metrics"]["accuracy"] == cells[2]["metrics"]["accuracy"]


def _matrix_run(url: str, files: dict, out: str, history: str) -> None:
    from llm_aug.jobs.compare_matrix import compare_matrix

    llm = {"backend": {"kind": "openai", "base_url": url, "model": "m1"},
           "runner": {"cache_path": f"{out}/cache.sqlite", "quiet": True}}
    compare_matrix([str(files["good1"]), str(files["bad"]), str(files["good2"])], "fine", files["val"], llm=llm,
                   out=out, n_boot=50, history=history)


def test_two_concurrent_compare_runs_share_one_history(files, tmp_path):
    hist = tmp_path / "runs" / "prompt-history.jsonl"
    ctx = multiprocessing.get_context("spawn")
    with LLMServer(reply=reply, latency_s=0.002) as srv:
        procs = [ctx.Process(target=_matrix_run, args=(srv.url, files, str(tmp_path / f"o{k}"), str(hist)))
                 for k in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
    records = read_history(hist)
    assert len(records) == 6 and len(hist.read_text(encoding="utf-8").splitlines()) == 6
    assert sorted(Path(r["out"]).parent.name for r in records) == ["o0"] * 3 + ["o1"] * 3


def test_matrix_history_of_an_hf_folder_input_records_the_folder_digest(files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llm_aug.data.io import load_dataset

    val = load_dataset(files["val"])
    folder = tmp_path / "hfval"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": val.texts, "label": [r.label for r in val.rows]}),
                   folder / "data" / "train.parquet")
    hist = tmp_path / "h.jsonl"
    with LLMServer(reply=reply) as srv:
        mx = invoke("prompts", "compare", files["bad"], files["good1"], files["good2"], "--history", hist,
                    "--eval-split", "val", "--task", "fine", "--input", f"hf:{folder}", "--n-boot", 200,
                    "--out", tmp_path / "mx",
                    *_llm(srv.url))
    assert mx.exit_code == 0, mx.output
    records = read_history(hist)
    assert (tmp_path / "mx" / "matrix.json").is_file()  # the matrix path, not the A/B one
    assert len(records) == 3 and all(r["data_sha256"].startswith("folder:") for r in records)
