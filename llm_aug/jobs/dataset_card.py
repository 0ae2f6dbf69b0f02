"""The dataset card (README.md) of an exported augment run: YAML metadata, then prose.

The YAML front matter is what the Hub and ``datasets`` read: ``configs`` names the data
file of each split (so ``load_dataset(DIR)`` needs no guessing), and ``llm_aug`` holds
this run's facts (task, label scheme, sizes per split and level, prompts, model, filters
and what they removed, review status, content warning) for tools to read back. The
review status is ``not reviewed``, or ``reviewed`` / ``partly reviewed`` (some posts
undecided or in conflict) with the facts ``llm-aug review export`` recorded in the
manifest's ``review`` section (reviewers, counts, Cohen's kappa).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import yaml

from llm_aug.data.schemes import scheme_for_task

CONTENT_WARNING = ("This dataset contains social-media posts (original and machine-generated) about "
                   "suicide and self-harm, including suicidal ideation, plans and attempts. It may be "
                   "distressing. It is for research on risk detection, not for generating such content. "
                   "If you or someone you know is at risk, contact local emergency services or a crisis line.")
REVIEW_STATUS = "not reviewed"
LICENSE_NOTE = ("License 'other': the original posts come from SOS-1K (see its authors' terms); set "
                "--license once you know the terms that apply to your copy.")


def level_counts(rows: list[dict]) -> dict[int, dict[str, int]]:
    """Per label: original and synthetic rows (labels in order)."""
    counts: Counter[tuple[int, bool]] = Counter((r["label"], r["synthetic"]) for r in rows)
    return {lv: {"original": counts[lv, False], "synthetic": counts[lv, True]}
            for lv in sorted({r["label"] for r in rows})}


def _prompts(rows: list[dict], manifest: dict) -> list[dict[str, str]]:
    seen = {(r["prompt"], r["prompt_sha256"]) for r in rows if r["prompt"]}
    ref = manifest.get("prompt") or {}
    if ref.get("name") and (ref.get("sha256") or ref.get("sha")):
        seen.add((ref["name"], ref.get("sha256") or ref.get("sha")))
    return [{"name": n, "sha256": s} for n, s in sorted(seen)]


def _models(rows: list[dict], manifest: dict) -> list[str]:
    models = {r["model"] for r in rows if r["model"]}
    usage_model = (manifest.get("usage") or {}).get("model")
    return sorted(models | ({usage_model} if usage_model else set()))


def review_info(manifest: dict) -> tuple[str, dict[str, Any] | None]:
    """(review status, review facts) from the manifest's ``review`` section (``llm-aug review export``)."""
    review = manifest.get("review")
    if not isinstance(review, dict):
        return REVIEW_STATUS, None
    facts = {k: review.get(k) for k in ("reviewers", "reviewer", "decisions", "generated", "kept", "accepted",
                                        "relabelled", "rejected", "undecided", "conflicts", "kappa", "time")}
    facts["agreement"] = [{"reviewers": list(p["reviewers"]), "n_both": p["n_both"], "percent": p["percent"],
                           "kappa": p["kappa"]} for p in review.get("agreement") or []]
    left = (review.get("undecided") or 0) + (review.get("conflicts") or 0)
    status = "reviewed" if not left else "partly reviewed"
    return status, facts


def _review_line(status: str, facts: dict[str, Any] | None) -> str:
    if facts is None:
        return f"Review status: **{status}** (no person has checked the synthetic posts)."
    who = ", ".join(facts["reviewers"] or []) or "nobody"
    line = (f"Review status: **{status}** by {who} ({facts['time']}): of {facts['generated']} synthetic posts "
            f"{facts['kept']} kept ({facts['relabelled']} relabelled to another level), {facts['rejected']} "
            f"rejected; {facts['undecided']} undecided and {facts['conflicts']} with conflicting decisions "
            "left out.")
    for p in facts["agreement"]:
        kappa = "undefined" if p["kappa"] is None else f"{p['kappa']:.3f}"
        line += (f" Agreement {' / '.join(p['reviewers'])}: {p['n_both']} posts decided by both, "
                 f"Cohen's kappa {kappa}.")
    return line


def card_metadata(rows: list[dict], manifest: dict, *, split: str, data_file: str, license: str,
                  n_rejected: int) -> dict[str, Any]:
    """The YAML front matter of the card."""
    config = manifest.get("config") or {}
    task = config.get("task", "fine")
    scheme = scheme_for_task(task)
    result = manifest.get("result") or {}
    levels = level_counts(rows)
    status, review = review_info(manifest)
    return {
        "license": license, "language": ["zh"], "task_categories": ["text-classification"],
        "tags": ["synthetic", "data-augmentation", "suicide-risk", "mental-health"],
        "pretty_name": f"SOS-1K augmented ({config.get('method', 'augment')}, {task})",
        "size_categories": ["n<1K" if len(rows) < 1000 else "1K<n<10K" if len(rows) < 10000 else "10K<n<100K"],
        "configs": [{"config_name": "default", "data_files": [{"split": split, "path": data_file}]}],
        "llm_aug": {
            "task": task, "label_scheme": {"name": scheme.name, "labels": scheme.labels,
                                           "names": [lv.name_en for lv in scheme.levels]},
            "splits": {split: {"rows": len(rows), "original": sum(c["original"] for c in levels.values()),
                               "synthetic": sum(c["synthetic"] for c in levels.values()),
                               "per_level": levels}},
            "methods": dict(Counter(r["method"] for r in rows)),
            "prompts": _prompts(rows, manifest), "models": _models(rows, manifest),
            "filters": config.get("filters") or "default", "rejections": result.get("rejections") or {},
            "rejected_rows": n_rejected, "review_status": status,
            **({"review": review} if review is not None else {}),
            "content_warning": CONTENT_WARNING, "source_run": ["llm-aug", *manifest.get("argv", [])[1:]],
        },
    }


def _body(meta: dict[str, Any]) -> list[str]:
    info = meta["llm_aug"]
    split, sizes = next(iter(info["splits"].items()))
    lines = [f"# {meta['pretty_name']}", "", f"> **Content warning.** {CONTENT_WARNING}", "",
             f"Task: `{info['task']}` text classification, label scheme `{info['label_scheme']['name']}`. "
             + _review_line(info["review_status"], info.get("review")), "",
             f"## Sizes ({split})", "", "| level | name | original | synthetic |", "|---|---|---|---|"]
    names = dict(zip(info["label_scheme"]["labels"], info["label_scheme"]["names"]))
    lines += [f"| {lv} | {names.get(lv, '')} | {c['original']} | {c['synthetic']} |"
              for lv, c in sizes["per_level"].items()]
    lines += [f"| all | | {sizes['original']} | {sizes['synthetic']} |", "",
              "## Columns", "", "`id`, `text`, `label`, `synthetic` (true for a generated row), `method` "
              "(`original` or the augmentation method), `source_ids`, `prompt`, `prompt_sha256`, `model`, `seed`.",
              "", "## Generation", ""]
    lines += [f"- prompt `{p['name']}` sha256 `{p['sha256']}`" for p in info["prompts"]] or ["- prompts: none"]
    lines += [f"- models: {', '.join(info['models']) or 'none (no LLM)'}",
              f"- methods: {', '.join(f'{m} ({n})' for m, n in info['methods'].items())}",
              f"- filters: {info['filters']}; rejected rows: {info['rejected_rows']}"]
    removed = {k: v for k, v in info["rejections"].items() if v}
    lines += [f"  - {k}: {v}" for k, v in removed.items()] or ["  - no filter removed anything"]
    lines += ["", "## License", "", LICENSE_NOTE if meta["license"] == "other" else f"`{meta['license']}`", ""]
    return lines


def render_card(rows: list[dict], manifest: dict, *, split: str, data_file: str, license: str,
                n_rejected: int) -> str:
    """README.md: ``---``-fenced YAML metadata, then a readable summary of the same facts."""
    meta = card_metadata(rows, manifest, split=split, data_file=data_file, license=license, n_rejected=n_rejected)
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    return "---\n" + front + "---\n\n" + "\n".join(_body(meta))
