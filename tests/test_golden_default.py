"""Golden check: the default method's SOS-1K val predictions, pinned by a hash.

``llm-aug train`` without ``--method`` is what the README's results table and every
user run rest on; a change that moves its predictions must be deliberate. Both tasks
train here exactly as ``train`` does (grid on val, fit on train) with a fresh, shared
embedding cache, so a changed embedder, loader, feature or selection step shows up
rather than being hidden behind vectors cached by an older version.

The hash covers a canonical form of ``val_predictions.jsonl``: per row the id (a hash
of the loaded text), the predicted label and the probabilities rounded to 4 decimals.
The file's own bytes were identical across commits, embedding orders and 1 or 2
threads here, but its 6-decimal floats are one CPU-dependent last bit away from
flipping; 4 decimals still catch any real change (a moved row moves its
probabilities by far more). How to check a change: docs/experiment.md, "Has the
default classifier moved?".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import SOS1K
from llm_aug.jobs.train import VAL_PREDICTIONS_FILE, train_model

#: task -> (sha256 of the canonical val predictions, val weighted F1 shown beside a mismatch).
PINNED = {
    "fine": ("1d6e26e83ec546aa1c1e068fd5733c0164f56b7e8f9b350d8faababe996ab046", 0.4361),
    "binary": ("e43e7924a95f1c88e65a1ab37c1ae2fcf9811729a059d5546f7e839eba2b3f36", 0.7897),
}
MESSAGE = "default-method predictions changed: if intended, update the hash and say so in the commit message"


def canonical_hash(path: Path) -> str:
    """sha256 of ``id<TAB>pred<TAB>proba...`` per row (probabilities to 4 decimals), in file order."""
    digest = hashlib.sha256()
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        proba = " ".join(f"{p:.4f}" for p in row.get("proba", []))
        digest.update(f"{row['id']}\t{row['pred']}\t{proba}\n".encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def trained(sos1k_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """Both tasks trained with the default method; one cold embedding cache for both (same 999 posts)."""
    root = tmp_path_factory.mktemp("golden")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_AUG_CACHE", str(root / "cache"))
        for task in PINNED:
            # No method: what `llm-aug train` runs without --method.
            res = train_model(task, sos1k_root / task / "train.tsv", sos1k_root / task / "val.tsv",
                              root / task)
            out[task] = (res.out_dir / VAL_PREDICTIONS_FILE, res.val_weighted_f1)
    return out


@pytest.fixture(scope="module")
def sos1k_root() -> Path:
    if not (SOS1K / "fine" / "train.tsv").is_file():
        pytest.skip(f"SOS-1K development copy not found at {SOS1K} (the golden check needs ../shared)")
    return SOS1K


@pytest.mark.slow
@pytest.mark.parametrize("task", list(PINNED))
def test_default_method_val_predictions_are_pinned(trained: dict[str, tuple[Path, float]], task: str) -> None:
    path, f1 = trained[task]
    want, want_f1 = PINNED[task]
    got = canonical_hash(path)
    assert got == want, (f"{MESSAGE} ({task}: hash {got}, was {want}; val weighted F1 {f1:.4f}, "
                         f"was {want_f1:.4f})")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_canonical_hash_sees_a_moved_prediction_not_float_noise(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "t", "pred": 1, "proba": [0.25, 0.75]},
            {"id": "b", "text": "u", "pred": 0, "proba": [0.6, 0.4]}]
    before = canonical_hash(_write(tmp_path / "p.jsonl", rows))
    noisy = [rows[0], {**rows[1], "proba": [0.600001, 0.399999]}]
    assert canonical_hash(_write(tmp_path / "p.jsonl", noisy)) == before
    moved = [rows[0], {**rows[1], "pred": 1, "proba": [0.4, 0.6]}]
    assert canonical_hash(_write(tmp_path / "p.jsonl", moved)) != before
    shifted = [rows[0], {**rows[1], "proba": [0.59, 0.41]}]  # same label, probabilities moved
    assert canonical_hash(_write(tmp_path / "p.jsonl", shifted)) != before
