"""Run manifests: what produced a set of outputs, so every result can be traced and redone."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from llm_aug import __version__
from llm_aug.core.errors import UserError
from llm_aug.core.files import atomic_write_text, data_digest

MANIFEST_FILE = "manifest.json"
_VERSIONED = ("torch", "transformers", "scikit-learn", "numpy", "openai")
# Never let anything that looks like a credential into a manifest. Matched on whole key
# names or suffixes, so usage counts such as "prompt_tokens" survive.
_SECRET_SUFFIXES = ("api_key", "apikey", "secret", "password", "authorization", "access_token",
                    "auth_token", "bearer")


def _is_secret_key(key: object) -> bool:
    k = str(key).lower()
    return k == "token" or k.endswith(_SECRET_SUFFIXES)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version(), "llm_aug": __version__}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def scrub(obj: Any) -> Any:
    """Drop credential-like keys from nested dicts (defence in depth)."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if _is_secret_key(k) else scrub(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    return obj


def write_manifest(
    out_dir: str | Path,
    command: str,
    *,
    data_files: Iterable[str | Path] = (),
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
    name: str = MANIFEST_FILE,
) -> Path:
    """Write ``manifest.json`` (or ``name``) into ``out_dir`` and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "command": command,
        "argv": sys.argv,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "versions": _versions(),
        "data_files": {str(p): data_digest(p) for p in data_files},
        "seed": seed,
        "config": scrub(config or {}),
        **scrub(extra or {}),
    }
    path = out_dir / name
    atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
    return path


def read_manifest(folder: str | Path, command: str) -> dict[str, Any]:
    """``folder/manifest.json`` of an ``llm-aug {command}`` run; a UserError when it is not one."""
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder}: no {MANIFEST_FILE}; not an `llm-aug {command}` output folder") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: expected a JSON object, not an `llm-aug {command}` manifest")
    if manifest.get("command") != command:
        raise UserError(f"{folder}: {MANIFEST_FILE} is from `{manifest.get('command')}`, not `{command}`")
    return manifest
