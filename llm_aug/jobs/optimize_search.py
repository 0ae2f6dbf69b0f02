"""The pieces of ``prompts optimize``: folds, exemplar draws, requests, scores, the winner's file.

The search is our own and small (DSPy's BootstrapFewShot idea, run through our runner so
the privacy guard, cache, resume and accounting apply): train posts the base prompt
labels correctly are the exemplar pool; a candidate is one template with one fixed
exemplar set drawn from that pool, so the winner is exactly what was scored.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import yaml

from llm_aug.core.errors import UserError
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import LabelScheme
from llm_aug.eval.metrics import compute_metrics
from llm_aug.llm.types import ChatRequest, SamplingParams
from llm_aug.prompting import load_prompt
from llm_aug.prompting.classify import prediction_row
from llm_aug.prompting.templates import Prompt, list_prompts

_FRONT_RE = re.compile(r"\A\s*\{#\s*---[ \t]*\n(?P<yaml>.*?)\n[ \t]*---\s*#\}", re.DOTALL)
#: The variable the winner's file keeps its exemplars in (its front matter's defaults).
FIXED = "fixed_exemplars"


def stratified_folds(rows: Sequence[Row], k: int, seed: int) -> dict[str, int]:
    """Row id -> fold (0..k-1): each label's rows shuffled, then dealt round-robin."""
    by_label: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    rng, folds, turn = random.Random(seed), {}, 0
    for label in sorted(by_label, key=str):
        group = by_label[label][:]
        rng.shuffle(group)
        for row in group:
            folds[row.id] = turn % k
            turn += 1
    return folds


def draw_sets(pool: Sequence[Row], shots: int, n: int, seed: int) -> list[list[Row]]:
    """Up to ``n`` distinct exemplar sets of ``shots`` rows, stratified by level where possible:
    labels in a random order, one row per label in turn (as ``ExemplarSelector``'s random)."""
    rng = random.Random(seed)
    by_label: dict[Any, list[Row]] = defaultdict(list)
    for row in pool:
        by_label[row.label].append(row)
    sets: list[list[Row]] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(n * 5):  # a small pool repeats sets; give up after a few tries each
        if len(sets) == n:
            break
        groups = {lab: rng.sample(rows, len(rows)) for lab, rows in by_label.items()}
        labels = list(groups)
        rng.shuffle(labels)
        chosen: list[Row] = []
        while len(chosen) < min(shots, len(pool)):
            for lab in labels:
                if groups[lab] and len(chosen) < shots:
                    chosen.append(groups[lab].pop())
        key = tuple(sorted(r.id for r in chosen))
        if chosen and key not in seen:
            seen.add(key)
            sets.append(chosen)
    return sets


def exemplar_sets(pool: Sequence[Row], train: Sequence[Row], shots: int, n: int, seed: int) -> list[list[Row]]:
    """``n`` sets from the bootstrapped ``pool``; when it is too small for that many distinct
    sets (a weak model labels few train posts right), the rest drawn from all labelled
    train posts (DSPy's labelled demos), after the bootstrapped ones."""
    sets = draw_sets(pool, shots, n, seed) if len(pool) >= shots else []
    if len(sets) < n:
        seen = {tuple(sorted(r.id for r in chosen)) for chosen in sets}
        extra = [c for c in draw_sets(train, shots, n, seed + 1) if tuple(sorted(r.id for r in c)) not in seen]
        sets += extra[:n - len(sets)]
    return sets


def requests_for(prompt: Prompt, scheme: LabelScheme, rows: Sequence[Row], exemplars: Sequence[Row],
                 params: SamplingParams, prefix: str, structured: bool = True) -> list[ChatRequest]:
    """One request per row (id ``prefix/row id``) with the fixed ``exemplars``, as classify builds it."""
    kwargs: dict[str, Any] = {"exemplars": list(exemplars)} if "exemplars" in prompt.variables else {}
    schema = prompt.json_schema(scheme) if structured else None
    return [ChatRequest(id=f"{prefix}/{row.id}", params=params, json_schema=schema,
                        messages=tuple(prompt.render(scheme=scheme, post=row.text, **kwargs)))
            for row in rows]


def predictions(summary_rows: Sequence[Any], scheme: LabelScheme, prefix: str) -> dict[str, int | None]:
    """Row id -> parsed label for the results of ``prefix``'s requests (None: no valid label)."""
    out = {}
    for res in summary_rows:
        head, _, row_id = res.id.partition("/")
        if head == prefix:
            out[row_id] = prediction_row("", res, scheme)["pred"]
    return out


def score(rows: Sequence[Row], preds: dict[str, int | None], scheme: LabelScheme, metric: str) -> float:
    """``metric`` of ``preds`` on ``rows`` (missing predictions count as wrong)."""
    result = compute_metrics([r.label for r in rows], [preds.get(r.id) for r in rows], scheme)
    return float(result[metric])


def cv_scores(rows: Sequence[Row], folds: dict[str, int], k: int, preds: dict[str, int | None],
              scheme: LabelScheme, metric: str, skip: set[str]) -> list[float]:
    """``metric`` on each fold's rows, leaving out ``skip`` (a candidate's own exemplars)."""
    scores = []
    for fold in range(k):
        held = [r for r in rows if folds[r.id] == fold and r.id not in skip]
        if held:
            scores.append(round(score(held, preds, scheme, metric), 4))
    return scores


def next_version(base: Prompt, folder: Path) -> int:
    """One above the highest version of the base's name among the shipped prompts and ``folder``."""
    versions = [i.version for i in list_prompts() if i.family == base.info.family and i.base == base.info.base]
    for path in (folder / base.info.family).glob(f"{base.info.base}.v*.jinja"):
        match = re.fullmatch(rf"{re.escape(base.info.base)}\.v(\d+)\.jinja", path.name)
        if match:
            versions.append(int(match[1]))
    return max([base.version, *versions]) + 1


def winner_source(template: Prompt, exemplars: Sequence[Row], found: dict[str, Any]) -> str:
    """The winning template as a self-contained prompt file: its exemplars fixed in the front
    matter (``defaults``), ids listed in ``exemplar_ids``, and ``optimized`` saying how it was found."""
    source = Path(template.info.path).read_text("utf-8")
    match = _FRONT_RE.match(source)
    assert match, template.info.path  # load_prompt checked the front matter
    meta = dict(template.meta)
    body = source[match.end():]
    meta["description"] = f"{str(meta['description']).strip()} (found by prompts optimize)"
    if exemplars:
        variables = {k: v for k, v in meta["variables"].items() if k != "exemplars"}
        meta["variables"] = {**variables, FIXED: "the exemplars the search chose (defaults), fixed"}
        meta["defaults"] = {**(meta.get("defaults") or {}),
                            FIXED: [{"id": r.id, "text": r.text, "label": r.label} for r in exemplars]}
        body = "{% set exemplars = " + FIXED + " %}" + body
    meta["exemplar_ids"] = [r.id for r in exemplars]
    meta["optimized"] = found
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)
    return "{# ---\n" + front.rstrip("\n") + "\n--- #}" + body


def write_winner(source: str, path: Path, exemplar_ids: list[str]) -> Path:
    """Write the file and load it back: it must parse, and hold exactly ``exemplar_ids``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    loaded = load_prompt(str(path))
    if loaded.meta.get("exemplar_ids") != exemplar_ids:
        raise UserError(f"{path}: the written prompt does not read back its exemplar ids")
    return path


def load_variants(folder: Path | None) -> list[Prompt]:
    """The prompt files (``*.vN.jinja``) of ``--variants DIR``, sorted by name."""
    if folder is None:
        return []
    if not folder.is_dir():
        raise UserError(f"--variants {folder}: not a folder")
    files = sorted(p for p in folder.rglob("*.jinja"))
    if not files:
        raise UserError(f"--variants {folder}: no .jinja prompt files")
    return [load_prompt(str(p)) for p in files]


def dataset_ids(data: Dataset) -> list[str]:
    """Row ids of ``data``; UserError on repeats (results are keyed by id)."""
    ids = [r.id for r in data.rows]
    if len(set(ids)) != len(ids):
        raise UserError(f"{data.path}: repeated row ids; the search keys results by id")
    return ids


def dump_json(data: Any) -> str:
    """JSON as the reports write it."""
    return json.dumps(data, indent=2, ensure_ascii=False)
