"""What the scale benches share: the repository root, synthetic training files, timed children.

``bench/scale.py`` and ``bench/scale_augment.py`` both import this module (bench/ is not a
package: each script puts its own folder on ``sys.path``), so neither imports the other
for these helpers.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "llm_aug", "--quiet"]  # children run in ROOT


def synthetic(train: Path, n: int, out: Path, seed: int = 0) -> Path:
    """``n`` distinct posts drawn from ``train``, each with ~5% of its characters replaced."""
    rng = random.Random(seed)
    rows = [line.split("\t") for line in train.read_text(encoding="utf-8").splitlines()[1:]]
    alphabet = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"
    lines = ["comment\tmyLabel"]
    for i in range(n):
        text, label = rows[i % len(rows)]
        chars = list(text)
        for _ in range(max(1, len(chars) // 20)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        lines.append(f"{''.join(chars)}{i}\t{label}")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def run_child(cmd: list[str], stderr_file: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, its own peak RSS in MB (``os.wait4``) and exit code."""
    t0 = time.perf_counter()
    with stderr_file.open("w") as err:
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    return {"wall_s": time.perf_counter() - t0, "peak_rss_mb": usage.ru_maxrss / 1024,
            "rc": os.waitstatus_to_exitcode(status)}


def target_note(res: dict[str, Any], max_s: float, max_mb: float | None = None) -> str:
    """The issue's target beside the measured value: ``target <= 600 s: met``."""
    limits = f"<= {max_s:.0f} s" + (f", <= {max_mb:,.0f} MB" if max_mb else "")
    met = res.get("rc", 0) == 0 and res["wall_s"] <= max_s and (not max_mb or res["peak_rss_mb"] <= max_mb)
    return f"target {limits}: {'met' if met else 'MISSED'}"
