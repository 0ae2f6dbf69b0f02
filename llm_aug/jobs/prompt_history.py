"""The prompt history: one JSON line per compared cell, appended by every ``prompts compare``.

Records are appended under an exclusive ``flock`` on the history file itself and
fsynced before the lock is released, so concurrent compare runs interleave whole lines
and a crash leaves at most a torn last line (skipped, with a warning, on reading).
``prompts history`` reads it back as a leaderboard plus, per prompt name, the change
since its previous version.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable

from llm_aug.core.errors import UserError

logger = logging.getLogger(__name__)

DEFAULT_HISTORY = Path("runs/prompt-history.jsonl")
_VERSION = re.compile(r"^(?P<base>.*)\.v(?P<n>\d+)(?:\.jinja)?$")


def append_records(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Append ``records`` (one JSON line each) to ``path`` under a lock, fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    # O_APPEND plus one write per run: a run's lines stay together even if a reader ignores the lock.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the flock
    return path


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every record of the history file (a torn or foreign line is skipped with a warning)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no prompt history at {path} (prompts compare writes it; see --history)")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d: not a JSON record, skipped", path, n)
            continue
        if isinstance(rec, dict) and "prompt" in rec and "metrics" in rec:
            records.append(rec)
    return records


def prompt_base(name: str) -> tuple[str, int | None]:
    """``classify/scene.v2`` -> (``classify/scene``, 2); a name without a version -> (name, None)."""
    m = _VERSION.match(name)
    return (m["base"], int(m["n"])) if m else (name, None)


def _value(rec: dict[str, Any], metric: str) -> float:
    v = (rec.get("metrics") or {}).get(metric, {}).get("value")
    return float(v) if v is not None else float("-inf")


def leaderboard(records: list[dict[str, Any]], metric: str, prompt: str | None = None) -> list[dict[str, Any]]:
    """The latest record of each (prompt, model, shots, strategy, data, split), best ``metric`` first."""
    latest: dict[tuple, dict[str, Any]] = {}
    for rec in records:
        if prompt and prompt_base(rec["prompt"])[0] != prompt_base(prompt)[0] and rec["prompt"] != prompt:
            continue
        key = (rec["prompt"], rec.get("model"), rec.get("shots"), rec.get("shot_strategy"),
               rec.get("data_sha256"), rec.get("eval_split"))
        latest[key] = rec
    lower = metric == "mae"
    return sorted(latest.values(), key=lambda r: _value(r, metric) * (-1 if lower else 1), reverse=True)


def version_changes(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Per row whose prompt has an earlier version on the same model, shots and data: the change."""
    changes = []
    for rec in rows:
        base, version = prompt_base(rec["prompt"])
        if version is None:
            continue
        earlier = [r for r in rows if prompt_base(r["prompt"])[0] == base
                   and (prompt_base(r["prompt"])[1] or 0) < version
                   and all(r.get(k) == rec.get(k) for k in ("model", "shots", "shot_strategy", "data_sha256"))]
        if not earlier:
            continue
        prev = max(earlier, key=lambda r: prompt_base(r["prompt"])[1] or 0)
        changes.append({"prompt": rec["prompt"], "previous": prev["prompt"], "model": rec.get("model"),
                        "shots": rec.get("shots"), "metric": metric,
                        "delta": _value(rec, metric) - _value(prev, metric)})
    return changes


def format_history(rows: list[dict[str, Any]], changes: list[dict[str, Any]], metric: str) -> str:
    """The leaderboard and the version changes as Markdown."""
    lines = [f"| # | prompt | model | shots | split | n | {metric} [95% CI] | date |",
             "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows, 1):
        m = r["metrics"].get(metric, {})
        ci = m.get("ci") or [float("nan"), float("nan")]
        value = f"{m['value']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if m.get("value") is not None else "n/a"
        shots = f"{r.get('shots')}/{r.get('shot_strategy')}" if r.get("shots") else "0"
        lines.append(f"| {i} | {r['prompt']} | {r.get('model')} | {shots} | {r.get('eval_split')} "
                     f"| {r.get('n')} | {value} | {str(r.get('date', ''))[:19]} |")
    if changes:
        lines += ["", "change since the previous version:"]
        lines += [f"  {c['previous']} -> {c['prompt']} ({c['model']}, shots {c['shots']}): "
                  f"{c['metric']} {c['delta']:+.4f}" for c in changes]
    return "\n".join(lines)


def now_utc() -> str:
    """The record's date: UTC, to the second."""
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def cell_record(*, prompt: str, model: str, shots: int, shot_strategy: str, n: int,
                metrics: dict[str, float | None], ci: dict[str, Any], data_file: Path, data_sha256: str,
                eval_split: str | None, command: str | None, date: str, out: Path,
                baseline: str | None = None) -> dict[str, Any]:
    """One history record: what was run on what, and how it scored (metrics with their CIs)."""
    from llm_aug.prompting import load_prompt

    return {"date": date, "command": command, "prompt": prompt, "prompt_sha256": load_prompt(prompt).sha256,
            "model": model, "shots": shots, "shot_strategy": shot_strategy if shots else None,
            "data": str(data_file), "data_sha256": data_sha256, "eval_split": eval_split or "given file",
            "n": n, "metrics": {m: {"value": v, "ci": ci.get(m)} for m, v in metrics.items()},
            "baseline": baseline, "out": str(out)}


def ab_records(report: Any, data_file: str | Path, eval_split: str | None, command: str | None, *,
               model: str, shots: int, shot_strategy: str) -> list[dict[str, Any]]:
    """History records of an A/B ``CompareReport`` (each prompt's ``results.json`` beside its predictions)."""
    from llm_aug.core.files import data_digest

    data_file, date = Path(data_file), now_utc()
    sha = data_digest(data_file)
    records = []
    for prompt, preds in ((report.a, report.predictions.a), (report.b, report.predictions.b)):
        res = json.loads((Path(preds).parent / "results.json").read_text(encoding="utf-8"))
        records.append(cell_record(prompt=prompt, model=model, shots=shots, shot_strategy=shot_strategy,
                                   n=res["n"], metrics={m: res.get(m) for m in report.deltas},
                                   ci=res.get("ci") or {}, data_file=data_file, data_sha256=sha,
                                   eval_split=eval_split, command=command, date=date, out=Path(preds).parent,
                                   baseline=report.a))
    return records
