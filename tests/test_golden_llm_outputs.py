"""Golden bytes of the LLM commands' outputs against loopback OpenAI-compatible servers.

Pins, as sha256 prefixes, every output file of ``classify`` (zero-shot; few-shot with
self-consistency), ``prompts compare``, ``augment --method llm`` and the batch flows
(``--batch export`` answered by a local results file as ``vllm run-batch`` writes it,
``--batch submit`` against tests/batch_server.py, augment's rounds as batch cycles),
plus each command's exit code, stdout and stderr. A refactor of the runner or batch
internals (issue 20) must leave all of them byte-identical; the public CLI is the only
interface used. Server replies are functions of the request body, inputs are built here.

Normalised before hashing (everything else is hashed as written):
  * the tmp directory, the repository root and the loopback port become placeholders
    (they differ per run; paths and URLs are still pinned relative to them);
  * in any JSON text, the values of ``created``, ``git_commit``, ``versions``, ``argv``
    (manifests: time, commit, installed versions, pytest's command line), ``wall_s``,
    ``seconds`` and ``candidates_per_s`` (durations) become ``"<volatile>"``, in place, so
    the rest of the bytes (key order, indentation) still count;
  * augment's stdout line of candidates/s rates loses its numbers.
Skipped: the request cache (``llm-cache.sqlite*``, SQLite pages) and the confusion
matrix PNGs (matplotlib's bytes; the predictions they are drawn from are pinned); the
PNGs' names are still pinned.

Re-pin (only for an intended change, said so in the commit message):
``GOLDEN_PRINT=1 python -m pytest tests/test_golden_llm_outputs.py`` prints the current
hashes instead of asserting. ``GOLDEN_DUMP=DIR`` also writes the normalised outputs
under DIR/<scenario>/, to diff two trees' outputs when a hash moves.
Pinned on commit abbb10a (before issue 20's runner/batch refactor). Re-pinned once since:
the five batch.json entries, for the keys issue 20 added (``job``, the recorded job that
``batch collect`` continues, and ``max_requests``); with those two keys removed each file
hashes to its abbb10a value, and every other output is unchanged. And the two ``--samples 3``
predictions files, for issue 21's ``proba`` (the vote shares): without it they hash as before.
And the augment manifests and one batch.json, for issue 23's ``augment --format``: the config's
``corpus_format`` (``--format tsv`` in the recorded argv) and the outputs key ``tsv`` renamed
``table``; diffed with GOLDEN_DUMP against 1b91672, nothing else moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from batch_server import BatchServer
from clirun import invoke
from conftest import REPO, write
from llm_server import LLMServer, _response

# -- inputs ------------------------------------------------------------------------------
_POOL = "天地山水风云花草木日月星辰春夏秋冬东南西北红黄蓝绿鱼鸟虫马牛羊猫狗桌椅门窗书纸墨茶饭菜米面河湖海岛林田路桥城村楼房衣帽鞋伞灯镜钟琴棋画歌舞"
# Rows that exercise escaping and quoting in every writer (JSON, TSV with quotes, emoji, a
# literal backslash).
_SPECIAL = ['他说"别管我"，可我真的撑不住了😭', "凌晨三点还睡不着，\\n 明天又要早起。", "ok 我没事 真的 (笑)"]


def _post(key: str) -> str:
    """A 22-character post of plain characters, a function of ``key``."""
    rng = random.Random(key)
    chars = [rng.choice(_POOL) for _ in range(20)]
    return "".join(chars[:10]) + "，" + "".join(chars[10:]) + "。"


def _tsv(path: Path, rows: list[tuple[str, int]]) -> Path:
    return write(path, "comment\tmyLabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    """train.tsv (4 posts per level of 11), val.tsv (2 per level, 3 special rows first)."""
    train = [(_post(f"train-{lv}-{k}"), lv) for lv in range(11) for k in range(4)]
    train[5] = (_SPECIAL[0] + "。", 1)  # a val post up to punctuation: augment drops it, warns
    val = [(t, i % 11) for i, t in enumerate(_SPECIAL)]
    val += [(_post(f"val-{lv}-{k}"), lv) for lv in range(11) for k in range(2)]
    return {"train": _tsv(tmp_path / "data" / "train.tsv", train),
            "val": _tsv(tmp_path / "data" / "val.tsv", val)}


@pytest.fixture(autouse=True)
def _fixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_AUG_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-golden-0000")


# -- server replies (functions of the request body) ----------------------------------------
def _digest(body: dict, index: int) -> int:
    text = json.dumps(body.get("messages"), sort_keys=True, ensure_ascii=False) + f"#{index}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def classify_reply(body: dict, index: int) -> str:
    """Mostly ``等级：X``; some JSON, some wordy, one in 9 unparseable."""
    d = _digest(body, index)
    level = d % 11
    kind = (d // 11) % 9
    if kind == 0:
        return "我无法判断这条评论。"
    if kind == 1:
        return json.dumps({"label": level, "reason": "示例"}, ensure_ascii=False)
    if kind == 2:
        return f"分析：语气消沉。\n等级：{level}"
    return f"等级：{level}"


_TARGET = re.compile(r"目标等级：(\d+)级")
_EXAMPLE = re.compile(r"<example>\n(.*?)\n</example>", re.DOTALL)


def augment_reply(val_texts: list[str]) -> Callable[[dict, int], str]:
    """Generation replies: up to two new posts, then one of each kind the filters must drop."""
    def reply(body: dict, index: int) -> str:
        prompt = body["messages"][-1]["content"]
        if not _TARGET.search(prompt):  # not a generation request
            return classify_reply(body, index)
        d = _digest(body, index)
        # 0, 1 or 2 new posts: some levels fall short and need further rounds.
        posts = [_post(f"{d:x}:{i}") for i in range(d % 3)]
        posts += [_EXAMPLE.findall(prompt)[0],     # copies an exemplar
                  val_texts[d % len(val_texts)],   # a protected post
                  "so tired of it all, bye.",      # not Chinese
                  "作为AI助手我想说相信自己相信自己相信自己"]  # assistant voice
        if d % 7 == 0:  # fenced, as some models answer
            return "```json\n" + json.dumps(posts, ensure_ascii=False) + "\n```"
        return json.dumps(posts, ensure_ascii=False)
    return reply


def completion(body: dict, reply: Callable[[dict, int], str]) -> dict[str, Any]:
    """The chat completion a server gives for ``body`` (the shape of llm_server's)."""
    texts = [reply(body, i) for i in range(int(body.get("n") or 1))]
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return {"id": "chatcmpl-golden", "object": "chat.completion", "created": 0,
            "model": body.get("model"),
            "choices": [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": t}}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": sum(map(len, texts)),
                      "total_tokens": prompt_tokens + sum(map(len, texts))}}


class RefusingServer(LLMServer):
    """An LLMServer that answers 400 to every request about a post holding ``refuse``.

    Chosen by content, not by arrival order (``script``), so the failed row is the same
    whatever the concurrency. Hooks llm_server's request handler (bench code, not llm_aug).
    """

    def __init__(self, refuse: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.refuse = refuse

    def _handle(self, conn: Any, path: str, headers: dict[str, str], body_bytes: bytes) -> None:
        if self.refuse in json.loads(body_bytes or b"{}")["messages"][-1]["content"]:
            error = b'{"error": {"message": "golden: refused", "type": "invalid_request_error"}}'
            self._reply(conn, _response(400, error), False)
            return
        super()._handle(conn, path, headers, body_bytes)


# -- normalising and hashing --------------------------------------------------------------
VOLATILE = ("created", "git_commit", "versions", "argv", "wall_s", "seconds", "candidates_per_s")
_VOLATILE_KEY = re.compile(r'"(%s)":\s*' % "|".join(VOLATILE))
_PORT = re.compile(r"(https?://127\.0\.0\.1):\d+")
_RATE = re.compile(r"(candidates/s: .*)$", re.MULTILINE)
_DECODER = json.JSONDecoder()


def _blank_volatile(text: str) -> str:
    """Replace each volatile key's JSON value (any shape) by ``"<volatile>"``, bytes around kept."""
    out, pos = [], 0
    for match in _VOLATILE_KEY.finditer(text):
        if match.start() < pos:
            continue  # inside a value already blanked
        try:
            _, end = _DECODER.raw_decode(text, match.end())
        except json.JSONDecodeError:
            continue
        out += [text[pos:match.end()], '"<volatile>"']
        pos = end
    return "".join(out) + text[pos:]


def normalise(text: str, tmp: Path) -> str:
    """``text`` with run-dependent paths, ports, timestamps and durations replaced."""
    text = text.replace(str(tmp), "<TMP>").replace(str(REPO), "<REPO>")
    text = _PORT.sub(r"\1:<PORT>", text)
    text = _RATE.sub(lambda m: re.sub(r"(round \d+) [\d,.]*\d", r"\1 N", m.group(1)), text)
    return _blank_volatile(text)


def _skipped(name: str) -> bool:
    return name.startswith("llm-cache.sqlite")


class Record:
    """The hashes of one scenario: command results and output files, normalised."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.hashes: dict[str, str] = {}  # what is pinned
        self.texts: dict[str, str] = {}  # the normalised texts behind them (GOLDEN_DUMP)

    def add(self, key: str, text: str) -> None:
        norm = normalise(text, self.tmp)
        self.texts[key] = norm
        self.hashes[key] = hashlib.sha256(norm.encode()).hexdigest()[:16]

    def run(self, step: str, *args: object) -> Any:
        """Run ``llm-aug --quiet ARGS``; its exit code, stdout and stderr are recorded."""
        result = invoke(*args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.hashes[f"{step}.exit"] = str(result.exit_code)
        self.add(f"{step}.stdout", result.stdout)
        self.add(f"{step}.stderr", result.stderr)
        return result

    def tree(self, root: Path, prefix: str = "") -> None:
        """Every file under ``root``: its normalised hash, or ``png`` for a skipped image."""
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not _skipped(p.name)):
            key = prefix + path.relative_to(root).as_posix()
            if path.suffix == ".png":
                self.hashes[key] = "png"
            else:
                self.add(key, path.read_text(encoding="utf-8"))


def check(name: str, record: Record, capsys: pytest.CaptureFixture) -> None:
    """Assert ``record`` equals GOLDEN[name]; print it instead under GOLDEN_PRINT=1."""
    if os.environ.get("GOLDEN_DUMP"):
        dump = Path(os.environ["GOLDEN_DUMP"]) / name
        for key, text in record.texts.items():
            write(dump / key.replace("/", "__"), text)
    if os.environ.get("GOLDEN_PRINT"):
        with capsys.disabled():
            print(f"\n    {json.dumps(name)}: {{")
            print("".join(f"        {json.dumps(k)}: {json.dumps(v)},\n" for k, v in record.hashes.items()), end="")
            print("    },")
        return
    want = GOLDEN[name]
    diff = sorted(k for k in set(want) | set(record.hashes) if want.get(k) != record.hashes.get(k))
    assert not diff, (f"{name}: outputs changed ({len(diff)} of {len(want)} entries): "
                      + ", ".join(f"{k} {want.get(k)} -> {record.hashes.get(k)}" for k in diff)
                      + "\n(GOLDEN_DUMP=DIR writes the normalised outputs to diff; GOLDEN_PRINT=1 re-pins)")


# -- scenarios ----------------------------------------------------------------------------
def _llm(url: str) -> list[object]:
    return ["--backend", "openai", "--base-url", url, "--model", "golden-m"]


def test_classify_zero_shot(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    with LLMServer(reply=classify_reply) as srv:
        rec.run("classify", "classify", "--task", "fine", "--input", data["val"], "--output",
                out / "p.jsonl", *_llm(srv.url))
    rec.tree(out)
    check("classify_zero_shot", rec, capsys)


def test_classify_few_shot_samples(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    with LLMServer(reply=classify_reply) as srv:
        rec.run("classify", "classify", "--task", "fine", "--input", data["val"], "--output",
                out / "p.jsonl", "--shots", 3, "--train", data["train"], "--samples", 3, *_llm(srv.url))
    rec.tree(out)
    check("classify_few_shot_samples", rec, capsys)


def test_classify_failed_and_retried_rows(tmp_path, data, capsys):
    """One post refused (400: its row has an error, exit 4), one 429 retried (same outputs)."""
    rec, out = Record(tmp_path), tmp_path / "out"
    with RefusingServer("ok 我没事", reply=classify_reply, retry_after_s=0.01) as srv:
        srv.script("429")
        rec.run("classify", "classify", "--task", "fine", "--input", data["val"], "--output",
                out / "p.jsonl", *_llm(srv.url))
    rec.tree(out)
    check("classify_failed_and_retried_rows", rec, capsys)


def test_prompts_compare(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    with LLMServer(reply=classify_reply) as srv:
        rec.run("compare", "prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1",
                "--task", "fine", "--input", data["val"], "--n-boot", 50, "--out", out, *_llm(srv.url))
    rec.tree(out)
    check("prompts_compare", rec, capsys)


def test_prompts_compare_batch_submit(tmp_path, data, capsys):
    """Prompt B's requests are a second cycle: they exist only once A's are collected."""
    rec, out = Record(tmp_path), tmp_path / "out"
    with BatchServer(reply=classify_reply) as srv:
        rec.run("submit", "prompts", "compare", "classify/scene.v1", "classify/scene_levels.v1", "--task",
                "fine", "--input", data["val"], "--n-boot", 50, "--out", out, *_llm(srv.url),
                "--batch", "submit")
        for n in range(1, 6):
            rec.run(f"collect{n}", "batch", "collect", out / "batch")
            if "nothing to collect" in rec.texts[f"collect{n}.stderr"]:
                break
    rec.tree(out)
    check("prompts_compare_batch_submit", rec, capsys)


def _augment_args(data: dict[str, Path], out: Path, url: str) -> list[object]:
    return ["augment", "--method", "llm", "--task", "fine", "--train", data["train"], "--protect",
            data["val"], "--balance", "6", "--posts-per-request", "2", "--shots", "2", "--out", out,
            *_llm(url)]


def _val_texts(data: dict[str, Path]) -> list[str]:
    return [line.split("\t")[0] for line in data["val"].read_text(encoding="utf-8").splitlines()[1:]]


def test_augment_llm(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    with LLMServer(reply=augment_reply(_val_texts(data))) as srv:
        rec.run("augment", *_augment_args(data, out, srv.url))
    rec.tree(out)
    check("augment_llm", rec, capsys)


def _answer_new_files(run: Path, results: Path, answered: set[str], reply: Callable[[dict, int], str],
                      fail_first: bool) -> list[Path]:
    """Results files for the request files not answered yet, as `vllm run-batch -o` writes them.

    With ``fail_first``, the second line of the first new file is an error line.
    """
    made = []
    for path in sorted(run.glob("requests-c*-*.jsonl")):
        if path.name in answered:
            continue
        answered.add(path.name)
        lines = []
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
            request = json.loads(raw)
            if fail_first and not made and n == 1:
                lines.append({"id": f"vllm-{n}", "custom_id": request["custom_id"], "response": None,
                              "error": {"code": "oom", "message": "out of memory"}})
                continue
            lines.append({"id": f"vllm-{n}", "custom_id": request["custom_id"],
                          "response": {"status_code": 200, "request_id": f"vllm-req-{n}",
                                       "body": completion(request["body"], reply)},
                          "error": None})
        made.append(write(results / path.name, "".join(json.dumps(x, ensure_ascii=False) + "\n"
                                                        for x in lines)))
    return made


def _collect_exported(rec: Record, run: Path, results: Path, reply: Callable[[dict, int], str],
                      fail_once: bool, limit: int = 12) -> None:
    """Answer and collect each exported cycle until a collect exports nothing new."""
    answered: set[str] = set()
    for cycle in range(1, limit + 1):
        files = _answer_new_files(run, results, answered, reply, fail_first=fail_once and cycle == 1)
        if not files:
            return
        rec.run(f"collect{cycle}", "batch", "collect", run, *[x for f in files for x in ("--results", f)])
    raise AssertionError("batch cycles did not finish")


def test_classify_batch_export_collect(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    run = out / "run"
    rec.run("export", "classify", "--task", "fine", "--input", data["val"], "--output", out / "p.jsonl",
            "--shots", 2, "--train", data["train"], *_llm("http://127.0.0.1:9/v1"),
            "--batch", "export", "--batch-dir", run, "--batch-max-requests", 10)
    rec.tree(out, "after-export/")
    _collect_exported(rec, run, tmp_path / "results", classify_reply, fail_once=True)
    rec.tree(out)
    check("classify_batch_export_collect", rec, capsys)


def test_classify_batch_submit_collect(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    run = out / "run"
    failed: set[str] = set()

    def fail_one(line: dict) -> bool:  # the first line of the first batch, once
        if not failed:
            failed.add(line["custom_id"])
            return True
        return False

    with BatchServer(reply=classify_reply, fail=fail_one) as srv:
        rec.run("submit", "classify", "--task", "fine", "--input", data["val"], "--output", out / "p.jsonl",
                "--samples", 3, *_llm(srv.url), "--batch", "submit", "--batch-dir", run,
                "--batch-max-requests", 30)
        rec.run("status", "batch", "status", run)
        for n in range(1, 6):
            rec.run(f"collect{n}", "batch", "collect", run)
            if "nothing to collect" in rec.texts[f"collect{n}.stderr"]:
                break
        assert srv.chat_requests == 0
    rec.tree(out)
    check("classify_batch_submit_collect", rec, capsys)


def test_augment_batch_export_rounds(tmp_path, data, capsys):
    rec, out = Record(tmp_path), tmp_path / "out"
    reply = augment_reply(_val_texts(data))
    rec.run("export", *_augment_args(data, out, "http://127.0.0.1:9/v1"), "--batch", "export")
    _collect_exported(rec, out / "batch", tmp_path / "results", reply, fail_once=True)
    assert (out / "corpus.tsv").is_file()
    rec.tree(out)
    check("augment_batch_export_rounds", rec, capsys)


#: scenario -> {step.exit|step.stdout|step.stderr|output path: sha256[:16] of the normalised text}.
#: Computed on commit abbb10a (GOLDEN_PRINT=1 output); batch.json entries re-pinned (see above).
GOLDEN: dict[str, dict[str, str]] = {
    "classify_zero_shot": {
        "classify.exit": "0",
        "classify.stdout": "ec5908d90d08fea3",
        "classify.stderr": "e3b0c44298fc1c14",
        "p.jsonl": "19539516eeb47302",
        "p.manifest.json": "7bd488e450ac5552",
        "p.raw.jsonl": "f1709849991b6112",
    },
    "classify_few_shot_samples": {
        "classify.exit": "0",
        "classify.stdout": "0586f1639125e09a",
        "classify.stderr": "e3b0c44298fc1c14",
        "p.jsonl": "29ee1d1f32ae8c92",
        "p.manifest.json": "3dfe134d4db9a109",
        "p.raw.jsonl": "c8712448e2a651fe",
    },
    "classify_failed_and_retried_rows": {
        "classify.exit": "4",
        "classify.stdout": "6c29072d83849b8f",
        "classify.stderr": "7274598338eb1c49",
        "p.jsonl": "4807d99c99baf8ee",
        "p.manifest.json": "129abc516df29adc",
        "p.raw.jsonl": "07ec0d1fc60feb85",
    },
    "prompts_compare": {
        "compare.exit": "0",
        "compare.stdout": "a3d89ed9a16cd3a2",
        "compare.stderr": "e3b0c44298fc1c14",
        "classify_scene.v1/confusion.png": "png",
        "classify_scene.v1/predictions.jsonl": "3748f7638dad49de",
        "classify_scene.v1/predictions.raw.jsonl": "6208949638b9ea9d",
        "classify_scene.v1/results.json": "373a4203162fba37",
        "classify_scene_levels.v1/confusion.png": "png",
        "classify_scene_levels.v1/predictions.jsonl": "19539516eeb47302",
        "classify_scene_levels.v1/predictions.raw.jsonl": "f1709849991b6112",
        "classify_scene_levels.v1/results.json": "ebf5c431726bdc90",
        "flips.jsonl": "7bcc1acedb5b6e5c",
        "manifest.json": "9eb446d19943c628",
        "prompt_compare.json": "882f709a04d04ac3",
    },
    "prompts_compare_batch_submit": {
        "submit.exit": "0",
        "submit.stdout": "04ded2cf194603ba",
        "submit.stderr": "bebe434fca3e01ee",
        "collect1.exit": "0",
        "collect1.stdout": "949a3d2515b2b22e",
        "collect1.stderr": "0cf63ad62b1af469",
        "collect2.exit": "0",
        "collect2.stdout": "a3d89ed9a16cd3a2",
        "collect2.stderr": "ca0a13be51fce2d4",
        "collect3.exit": "0",
        "collect3.stdout": "e3b0c44298fc1c14",
        "collect3.stderr": "08055d5a4bbadf24",
        "batch/batch.json": "ab9c1c6facc11317",
        "batch/requests-c1-001.jsonl": "a47426cbe9db4399",
        "batch/requests-c1-001.output.jsonl": "44ce7e4f82948d26",
        "batch/requests-c2-001.jsonl": "e15f02e3a2a78308",
        "batch/requests-c2-001.output.jsonl": "7dada201ec6fb7ed",
        "classify_scene.v1/confusion.png": "png",
        "classify_scene.v1/predictions.jsonl": "3748f7638dad49de",
        "classify_scene.v1/predictions.raw.jsonl": "6208949638b9ea9d",
        "classify_scene.v1/results.json": "418c3bb36333ee8b",
        "classify_scene_levels.v1/confusion.png": "png",
        "classify_scene_levels.v1/predictions.jsonl": "19539516eeb47302",
        "classify_scene_levels.v1/predictions.raw.jsonl": "f1709849991b6112",
        "classify_scene_levels.v1/results.json": "db19191143f9b36b",
        "flips.jsonl": "7bcc1acedb5b6e5c",
        "manifest.json": "9eb446d19943c628",
        "prompt_compare.json": "882f709a04d04ac3",
    },
    "augment_llm": {
        "augment.exit": "0",
        "augment.stdout": "2189d269f880b827",
        "augment.stderr": "3e18832df0b3e11c",
        "corpus.jsonl": "7ed74ef18874d8bc",
        "corpus.tsv": "ddad86994d5745ba",
        "manifest.json": "a4f3eea07662e284",
        "plan.json": "695456d85dedd595",
        "plan.md": "607f4ebfbf73328e",
        "raw/generate-r0.jsonl": "6018bfe23f7f5cd3",
        "raw/generate-r1.jsonl": "a611fe169daa5649",
        "raw/generate-r2.jsonl": "0d1eb46dc26bb271",
        "rejected.jsonl": "9320f4abb750e695",
        "report.html": "e88d2daf7f55d00a",
        "report.md": "246b8878fa069271",
    },
    "classify_batch_export_collect": {
        "export.exit": "0",
        "export.stdout": "2ebffe9afa2da0f3",
        "export.stderr": "144cf5fe68cfe8c6",
        "after-export/p.raw.jsonl": "e3b0c44298fc1c14",
        "after-export/run/batch.json": "905f39d24cbdaa91",
        "after-export/run/requests-c1-001.jsonl": "a10c519e23daf3c7",
        "after-export/run/requests-c1-002.jsonl": "b79b0083ac5dcb69",
        "after-export/run/requests-c1-003.jsonl": "3a60b6c000fbae71",
        "collect1.exit": "0",
        "collect1.stdout": "66ef02e098027401",
        "collect1.stderr": "19710f474847518b",
        "collect2.exit": "0",
        "collect2.stdout": "2b3923d956c55092",
        "collect2.stderr": "a2496efd114b2e42",
        "p.jsonl": "6f096ad27b044ca7",
        "p.manifest.json": "2b8160a25bad49f7",
        "p.raw.jsonl": "75939cc6f1dafe50",
        "run/batch.json": "5f7c39546b04fb97",
        "run/requests-c1-001.jsonl": "a10c519e23daf3c7",
        "run/requests-c1-002.jsonl": "b79b0083ac5dcb69",
        "run/requests-c1-003.jsonl": "3a60b6c000fbae71",
        "run/requests-c2-001.jsonl": "588b7ec45a7f8e8f",
    },
    "classify_batch_submit_collect": {
        "submit.exit": "0",
        "submit.stdout": "71eb12c86b72acd3",
        "submit.stderr": "ff52dbe36192aaea",
        "status.exit": "0",
        "status.stdout": "d5ad23bce1f5221d",
        "status.stderr": "e3b0c44298fc1c14",
        "collect1.exit": "0",
        "collect1.stdout": "7d45e3f0ed9e8ce9",
        "collect1.stderr": "28b2c2890b558ff2",
        "collect2.exit": "0",
        "collect2.stdout": "2b3923d956c55092",
        "collect2.stderr": "4765f75d67a687b0",
        "collect3.exit": "0",
        "collect3.stdout": "e3b0c44298fc1c14",
        "collect3.stderr": "af8db523476186b9",
        "p.jsonl": "da26c72893322dfd",
        "p.manifest.json": "9545574d23bb99f7",
        "p.raw.jsonl": "f54cca4fbc716544",
        "run/batch.json": "b63e7ce7c38d5110",
        "run/requests-c1-001.errors.jsonl": "c3f424385a66aad3",
        "run/requests-c1-001.jsonl": "1ced4b819bd579f8",
        "run/requests-c1-001.output.jsonl": "f7ef5341f72ee3cd",
        "run/requests-c2-001.jsonl": "8eaff70f86b52a3a",
        "run/requests-c2-001.output.jsonl": "7fd61f899813a94f",
    },
    "augment_batch_export_rounds": {
        "export.exit": "0",
        "export.stdout": "eb5e888594abff95",
        "export.stderr": "89e970936d9a9f2f",
        "collect1.exit": "0",
        "collect1.stdout": "57576187846b44cf",
        "collect1.stderr": "684ff0e3d299920b",
        "collect2.exit": "0",
        "collect2.stdout": "b1f68ccf87d24c14",
        "collect2.stderr": "20920087ce51b6b2",
        "collect3.exit": "0",
        "collect3.stdout": "112121d022d62735",
        "collect3.stderr": "5e2ff57a02f21288",
        "collect4.exit": "0",
        "collect4.stdout": "2189d269f880b827",
        "collect4.stderr": "3712ad72ac954f6a",
        "batch/batch.json": "4c8bfb5a29bc5406",
        "batch/requests-c1-001.jsonl": "1751237cc80f1d68",
        "batch/requests-c2-001.jsonl": "e1789c2c6694fc62",
        "batch/requests-c3-001.jsonl": "5ff7d16af5016c70",
        "batch/requests-c4-001.jsonl": "88313238cc4a3a9f",
        "corpus.jsonl": "7ed74ef18874d8bc",
        "corpus.tsv": "ddad86994d5745ba",
        "manifest.json": "a79b0f94253e04dd",
        "plan.json": "695456d85dedd595",
        "plan.md": "607f4ebfbf73328e",
        "raw/generate-r0.jsonl": "6018bfe23f7f5cd3",
        "raw/generate-r1.jsonl": "a611fe169daa5649",
        "raw/generate-r2.jsonl": "0d1eb46dc26bb271",
        "rejected.jsonl": "9320f4abb750e695",
        "report.html": "e88d2daf7f55d00a",
        "report.md": "246b8878fa069271",
    },
}
