"""Does the leakage filter reject near-copies of protected posts, and only those?

From SOS-1K fine/val (the protected file; the test split is never read) it builds, seeded:

- **10%- / 20%- / 25%-edited copies**: a val post with that share of its characters changed
  (substituted 60%, inserted 20%, deleted 20%; replacements drawn from the training
  posts' character frequencies);
- **30%- / 40%- / 50%-verbatim splices**: that share of a val post's letters, verbatim
  (its beginning or, half the time, its end), joined to the other half of a random
  training post, then 0-2 characters edited within 3 characters of the joint (so the
  verbatim run can be a few characters shorter than the nominal share);
- **wrapped copies**: a val post with a few words before and after it;
- **distinct real posts**: the training posts and the paper's synthetic rows
  (``paper-augmented/*.tsv`` minus the training rows), without exact copies of a val post
  and without those a reference judge, independent of the filter, calls near one
  (``difflib`` ratio >= 0.6 or a common substring of >= 12 characters with a val post);

and prints the share of each that the ``leakage`` filter rejects with ``--protect val``,
next to the filter as it was before (Jaccard >= 0.5 or containment >= 0.8 of 3-gram sets)
and without the span rule (issue 19), the time per candidate with and without it, how
many training posts the same rules call near a val post, and a sweep of the span rule's
thresholds (``bench/leakage_sweep.py``: catch rate on the splices vs false leaks on the
distinct posts). Copies are made of val posts with at least ``--min-chars``
letters (the target population; a half of a shorter post is a stock phrase such as
好想离开这个世界, which distinct posts share) and, for information, of shorter ones.

Usage: ``python bench/leakage.py [--data ../shared/data/sos1k] [--seed 0] [--copies 3] [--min-chars 20]``
"""

from __future__ import annotations

import argparse
import difflib
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from llm_aug.augment.dedup import leakage_verdicts
from llm_aug.augment.filters import LeakageConfig
from llm_aug.augment.heldout import find_copies
from llm_aug.augment.textsim import ShingleIndex, normalize_for_match, shingles
from llm_aug.data.io import Row, load_dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from leakage_sweep import chosen_setting, span_off, sweep, sweep_table  # noqa: E402 - bench/ is not a package

_WORD = re.compile(r"[^\W_]")
WRAPS = ("说真的，", "唉，", "我也是，", "今天又想起来了：", "……", "有人懂吗？", "算了吧。", "晚安。",
         "真的好难受", "怎么办啊", "不想说了", "就这样吧")
TARGETS = {"10%-edited copies": (">= 95%", lambda r: r >= 0.95), "20%-edited copies": (">= 80%", lambda r: r >= 0.80),
           "40%-verbatim splices": (">= 95%", lambda r: r >= 0.95), "50%-verbatim splices": (">= 95%", lambda r: r >= 0.95),
           "wrapped copies": (">= 95%", lambda r: r >= 0.95), "distinct real posts": ("<= 2%", lambda r: r <= 0.02)}
SPLICES = (0.3, 0.4, 0.5)
Perturb = Callable[[str, random.Random], str]


class Perturber:
    """Seeded perturbations of a post; new characters follow the training posts' frequencies."""

    def __init__(self, train_texts: list[str]) -> None:
        counts = Counter(ch for t in train_texts for ch in normalize_for_match(t))
        self.chars, self.weights = list(counts), list(counts.values())
        self.train = train_texts

    def edit(self, text: str, rate: float, rng: random.Random) -> str:
        """``rate`` of the letters changed: 60% substituted, 20% inserted before, 20% deleted."""
        chars = list(text)
        letters = [i for i, ch in enumerate(chars) if _WORD.match(ch)]
        for i in sorted(rng.sample(letters, max(1, round(rate * len(letters)))), reverse=True):
            self._change(chars, i, rng)
        return "".join(chars)

    def _change(self, chars: list[str], i: int, rng: random.Random) -> None:
        """One edit at ``i``: 60% substitution, 20% insertion before, 20% deletion."""
        op, new = rng.random(), rng.choices(self.chars, self.weights)[0]
        if op < 0.6:
            chars[i] = new
        elif op < 0.8:
            chars.insert(i, new)
        elif len(chars) > 1:
            del chars[i]

    def splice(self, text: str, share: float, rng: random.Random) -> str:
        """``share`` of the letters of ``text`` (start or end) joined to half a training post, edited at the joint."""
        letters = [i for i, ch in enumerate(text) if _WORD.match(ch)]
        keep, other = max(1, round(share * len(letters))), rng.choice(self.train)
        if rng.random() < 0.5:
            piece, rest = text[: letters[keep - 1] + 1], other[len(other) // 2:]
            chars, joint = list(piece + rest), len(piece)
        else:
            piece, rest = text[letters[-keep]:], other[: len(other) // 2]
            chars, joint = list(rest + piece), len(rest)
        for _ in range(rng.randint(0, 2)):  # an LLM (or a person) smooths the joint
            self._change(chars, min(max(joint + rng.randint(-3, 2), 0), len(chars) - 1), rng)
        return "".join(chars)

    def wrap(self, text: str, rng: random.Random) -> str:
        """``text`` with a few words before and after it."""
        return rng.choice(WRAPS) + text + rng.choice(WRAPS)

    def kinds(self) -> dict[str, Perturb]:
        """Name -> perturbation, as the table lists them."""
        return {"10%-edited copies": lambda t, rng: self.edit(t, 0.10, rng),
                "20%-edited copies": lambda t, rng: self.edit(t, 0.20, rng),
                "25%-edited copies": lambda t, rng: self.edit(t, 0.25, rng),
                **{f"{s:.0%}-verbatim splices": _splicer(self, s) for s in SPLICES}, "wrapped copies": self.wrap}


def _splicer(perturber: Perturber, share: float) -> Perturb:
    return lambda t, rng: perturber.splice(t, share, rng)


def near_by_reference(text: str, protected: list[str], grams: list[frozenset[str]]) -> bool:
    """The reference judge: difflib ratio >= 0.6 or a common substring >= 12 characters."""
    mine = shingles(text)
    for other, theirs in zip(protected, grams):
        if not (mine & theirs) and min(len(text), len(other)) >= 3:
            continue
        sm = difflib.SequenceMatcher(None, other, text, autojunk=False)
        if sm.real_quick_ratio() >= 0.6 and sm.ratio() >= 0.6:
            return True
        if min(len(text), len(other)) >= 12 and sm.find_longest_match(0, len(other), 0, len(text)).size >= 12:
            return True
    return False


def distinct_posts(data: Path, train: list[str], val: list[str]) -> tuple[list[str], int]:
    """Train + paper synthetic posts not near any val post; and how many the judge set aside."""
    train_keys = {normalize_for_match(t) for t in train}
    pool = list(train) + [t for f in sorted((data / "paper-augmented").glob("*.tsv"))
                          for t in load_dataset(f, require_labels=False).texts
                          if normalize_for_match(t) not in train_keys]
    seen, keys = set(normalize_for_match(v) for v in val), []
    for t in pool:
        k = normalize_for_match(t)
        if k and k not in seen:
            seen.add(k)
            keys.append(k)
    norm_val = [normalize_for_match(v) for v in val]
    grams = [shingles(v) for v in norm_val]
    kept = [k for k in keys if not near_by_reference(k, norm_val, grams)]
    return kept, len(keys) - len(kept)


def old_filter(texts: list[str], protected: list[Row]) -> list[bool]:
    """The filter before issue 11: 3-gram Jaccard >= 0.5 or containment >= 0.8 (>= 10 shingles)."""
    best = ShingleIndex([r.text for r in protected]).best(texts, 10)
    return [bool(j >= 0.5 or c >= 0.8) for j, c in zip(best.jaccard, best.containment)]


def rule_of(reason: str) -> str:
    """Which rule rejected a text, from its reason."""
    for key, name in (("reappears (", "protected share"), ("of the text is from", "candidate share"),
                      ("reappear verbatim", "span"),
                      ("Jaccard", "Jaccard"), ("edit similarity", "edit similarity")):
        if key in reason:
            return name
    return reason


def build_sets(args: argparse.Namespace, train: list[str], val: list[str]) -> dict[str, list[str]]:
    """Every candidate set, by table row name."""
    perturber, sets = Perturber(train), {}
    groups = {"": [v for v in val if len(normalize_for_match(v)) >= args.min_chars],
              f" (val posts of {args.short_chars}-{args.min_chars - 1} chars)":
                  [v for v in val if args.short_chars <= len(normalize_for_match(v)) < args.min_chars]}
    for suffix, sources in groups.items():
        for name, fn in perturber.kinds().items():
            rng = random.Random(f"{args.seed}:{name}{suffix}")
            sets[name + suffix] = [fn(v, rng) for v in sources for _ in range(args.copies)]
    return sets


def measure(sets: dict[str, list[str]], protected: list[Row]) -> tuple[list[dict], dict[str, float]]:
    """Per set: n, rejected (now, without the span rule, before issue 11), rules, examples;
    seconds per candidate of each filter, timed set by set in turn (the machine is noisy)."""
    rows, spent, total = [], Counter(), 0
    config = LeakageConfig()
    for name, texts in sets.items():
        t0 = time.perf_counter()
        verdicts = leakage_verdicts(texts, protected, config)
        t1 = time.perf_counter()
        no_span = leakage_verdicts(texts, protected, span_off(config))
        t2 = time.perf_counter()
        before = old_filter(texts, protected)
        took = {"now": t1 - t0, "no span": t2 - t1, "before": time.perf_counter() - t2}
        spent.update(took)
        if name == "distinct real posts":  # the common case in a run: candidates that copy nothing
            spent.update({f"{k}, distinct": v for k, v in took.items()})
        total += len(texts)
        reasons = [r for _, r in verdicts if r is not None]
        rows.append({"name": name, "n": len(texts), "rejected": len(reasons), "before": sum(before),
                     "no_span": sum(r is not None for _, r in no_span),
                     "rules": Counter(rule_of(r) for r in reasons),
                     "examples": [(t, r) for t, (_, r) in zip(texts, verdicts) if r is not None]})
    n_distinct = len(sets.get("distinct real posts", ()))
    return rows, {k: v / max(n_distinct if k.endswith("distinct") else total, 1) for k, v in spent.items()}


def table(rows: list[dict]) -> str:
    """The Markdown table."""
    out = ["| candidates | n | rejected | rate | target | without the span rule | before issue 11 | by rule |",
           "|---|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        rate = r["rejected"] / max(r["n"], 1)
        target, ok = TARGETS.get(r["name"], ("(info)", None))
        mark = "" if ok is None else (" ✓" if ok(rate) else " ✗")
        rules = ", ".join(f"{k} {v}" for k, v in r["rules"].most_common()) or "—"
        out.append(f"| {r['name']} | {r['n']} | {r['rejected']} | {rate:.1%} | {target}{mark} | "
                   f"{r['no_span'] / max(r['n'], 1):.1%} | {r['before'] / max(r['n'], 1):.1%} | {rules} |")
    return "\n".join(out)


def train_copies(data: Path, val: list[Row]) -> str:
    """How many training posts (fine, binary) the rules call near a val post, with and without spans."""
    parts = []
    for task in ("fine", "binary"):
        train, held = load_dataset(data / task / "train.tsv"), load_dataset(data / task / "val.tsv").rows
        now, off = find_copies(train.rows, held), find_copies(train.rows, held, span_off(LeakageConfig()))
        parts.append(f"{task}: {len(now.near)} of {len(train)} near a val post "
                     f"({len(off.near)} without the span rule; {len(now.exact)} exact copies)")
    return "Training posts near a protected post (what --drop-near-protected drops): " + "; ".join(parts) + "."


def main() -> None:
    """Parse arguments, build the sets, print the table, timings, training copies and the sweep."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "sos1k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--copies", type=int, default=3, help="perturbed copies per val post and kind")
    parser.add_argument("--min-chars", type=int, default=20, help="val posts copied for the targets")
    parser.add_argument("--short-chars", type=int, default=8, help="shortest val posts in the info rows")
    parser.add_argument("--show", type=int, default=0, help="print this many rejected distinct posts")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep of the span thresholds")
    parser.add_argument("--grid", action="store_true", help="sweep every combination, not one threshold at a time")
    args = parser.parse_args()
    started = time.perf_counter()
    train = load_dataset(args.data / "fine" / "train.tsv").texts
    val = load_dataset(args.data / "fine" / "val.tsv")
    sets = build_sets(args, train, val.texts)
    distinct, set_aside = distinct_posts(args.data, train, val.texts)
    sets = {**{k: v for k, v in sets.items() if "(" not in k}, "distinct real posts": distinct,
            **{k: v for k, v in sets.items() if "(" in k}}
    rows, per = measure(sets, val.rows)
    print(f"Protected: {args.data / 'fine' / 'val.tsv'} ({len(val)} posts); seed {args.seed}; "
          f"{args.copies} copies per val post of >= {args.min_chars} letters "
          f"({sum(len(normalize_for_match(v)) >= args.min_chars for v in val.texts)} posts).")
    print(f"Distinct real posts: {len(distinct)} (train + paper synthetic; {set_aside} set aside as near a "
          "val post by the reference judge).\n")
    print(table(rows))
    print(f"\nTime per candidate: {per['now'] * 1e6:.0f} µs (without the span rule: {per['no span'] * 1e6:.0f} µs; "
          f"before issue 11: {per['before'] * 1e6:.0f} µs), {len(val)} protected posts, "
          f"{sum(len(v) for v in sets.values())} candidates; on the distinct real posts alone (candidates that "
          f"copy nothing, as most in an augment run): {per['now, distinct'] * 1e6:.0f} µs "
          f"(without the span rule: {per['no span, distinct'] * 1e6:.0f} µs).")
    print(train_copies(args.data, val.rows))
    for text, reason in next(r for r in rows if r["name"] == "distinct real posts")["examples"][:args.show]:
        print(f"- {text} -- {reason}")
    if not args.no_sweep:
        c = LeakageConfig()
        print("\nSpan thresholds swept (rejection rate; the other rules as set):\n")
        print(sweep_table(sweep(sets, val.rows, c, args.grid), chosen_setting(c)))
    print(f"\nWhole run {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
