"""Run import-linter (``lint-imports``) on the package as it is installed.

``classifiers/``, ``eval/`` and ``prompts/`` live at the top of the repository but are
installed as ``llm_aug.classifiers``, ``llm_aug.eval`` and ``llm_aug.prompts``
(setuptools ``package-dir``). import-linter finds a package's modules by walking its
folder, which in an editable install holds none of those three. This script builds a
throw-away folder of symlinks with the installed layout, puts it first on
``PYTHONPATH`` and runs ``lint-imports`` with the contracts in ``pyproject.toml``.

    python tools/lint_imports.py [lint-imports options]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs(root: Path) -> dict[str, Path]:
    """Sub-packages of ``llm_aug`` that live outside ``llm_aug/``, from ``package-dir``."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: root / folder for name, folder in mapping.items()
            if name.startswith("llm_aug.") and name.count(".") == 1}


def build_view(dest: Path, root: Path = ROOT) -> Path:
    """``dest/llm_aug``: links to every entry of ``llm_aug/`` plus the mapped packages."""
    view = dest / "llm_aug"
    view.mkdir(parents=True)
    for entry in (root / "llm_aug").iterdir():
        if entry.name != "__pycache__":
            (view / entry.name).symlink_to(entry)
    for name, folder in package_dirs(root).items():
        (view / name.split(".", 1)[1]).symlink_to(folder)
    return dest


def main(argv: list[str], root: Path = ROOT) -> int:
    """Run ``lint-imports`` on the installed layout of ``root``; its exit code."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        print("lint-imports not found: pip install import-linter (the dev extra has it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="llm-aug-layout-") as tmp:
        build_view(Path(tmp), root)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")]))}
        cmd = [exe, str(root / "pyproject.toml"), "--no-cache", *argv]
        return subprocess.run(cmd, env=env, cwd=tmp).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
