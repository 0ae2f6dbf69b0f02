"""Every HTML page the toolkit writes renders in a real browser, Chinese included.

Builds the three pages cheaply (``compare_runs`` on two small evaluated runs with Chinese
system names, one with probabilities, level sets and alerts; ``experiment report`` on the
demo corpus with a majority baseline, the fake LLM backend and a ``screening:`` section;
``augment --method eda`` on the demo corpus; the prompt matrix's grid page, ``matrix.html``, of
two prompts x two fake models), screenshots each in headless Chromium and
fails on

* a blank page: the screenshot is (nearly) one colour;
* tofu: the page's own CSS (its ``<head>``, so the font stack it really ships) renders a
  line of the page's Chinese text as boxes. Tofu boxes are identical rectangles, so the
  rendered line has only a handful of distinct pixel columns; real glyphs give dozens.

The risk-screening section of the compare and experiment pages is also screenshot alone
(with the page's CSS): its tables and its reliability diagram must be drawn.

``test_the_tofu_check_sees_boxes_without_a_cjk_font`` proves the check on every run: it
renders the same probe with every CJK font hidden from fontconfig and expects tofu.

Needs ``chromium`` (or ``chromium-browser``) and a CJK font (Debian: ``apt-get install
chromium fonts-noto-cjk``); skipped without them.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import DEMO, write
from llm_aug.data.io import Dataset, Row
from llm_aug.data.schemes import load_scheme
from llm_aug.eval.render import FONT_STACK
from llm_aug.eval.report import compare_runs
from llm_aug.eval.results import score_predictions, write_results
from llm_aug.experiment import load_config, run_experiment, write_report
from llm_aug.jobs.augment import AugmentConfig, run_augment
from llm_aug.jobs.demo import BANNER

Image = pytest.importorskip("PIL.Image", reason="Pillow (installed with matplotlib) reads the screenshots")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FC_LIST = shutil.which("fc-list")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
FALLBACK_LINE = "我最近总是睡不着心里很乱不知道该怎么办"  # 18 distinct characters
PAGE_SIZE = (1400, 2000)
PROBE_SIZE = (1400, 160)
# Distinct ink columns of a probe line: tofu (identical boxes) gives ~3-10, real glyphs
# of >= 8 distinct characters at 48 px give well over 100 (see _probe).
MIN_GLYPH_COLUMNS = 40
MIN_DISTINCT_CHARS = 8


def _cjk_fonts() -> list[str]:
    """Files of the fonts fontconfig offers for a common Chinese character (我)."""
    out = subprocess.run([FC_LIST, ":charset=6211", "file"], capture_output=True, text=True, timeout=60).stdout
    return sorted({line.split(":")[0].strip() for line in out.splitlines() if line.strip()})


def _skip_reason() -> str | None:
    if CHROMIUM is None:
        return "chromium (or chromium-browser) not on PATH; Debian: apt-get install chromium fonts-noto-cjk"
    if FC_LIST is not None and not _cjk_fonts():
        return "no CJK font installed (fc-list :charset=6211 is empty); Debian: apt-get install fonts-noto-cjk"
    return None


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


# --- browser and image helpers ----------------------------------------------------


def screenshot(page: Path, png: Path, size: tuple[int, int], env: dict[str, str] | None = None):
    """``page`` as Chromium draws it, a greyscale Pillow image of ``size``."""
    profile = png.with_suffix(".profile")
    profile.mkdir()
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
           f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=png.parent,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0 and png.is_file(), f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    with Image.open(png) as im:
        return im.convert("L")


def ink_fraction(img) -> float:
    """Share of pixels that differ clearly from the most common (background) grey level."""
    a = np.asarray(img, dtype=np.int16)
    background = np.bincount(a.ravel(), minlength=256).argmax()
    return float((np.abs(a - background) > 40).mean())


def glyph_columns(img) -> int:
    """Distinct non-empty pixel columns of the ink (dark pixels) on a white probe."""
    ink = np.asarray(img) < 128
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    if not len(rows):
        return 0
    box = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return len({col.tobytes() for col in box.T if col.any()})


def probe_line(page_html: str) -> str:
    """Up to 16 distinct Chinese characters of the page's visible text (or a fixed line)."""
    text = re.sub(r"<[^>]*>", " ", re.sub(r"<(style|script)\b.*?</\1>", " ", page_html, flags=re.S))
    chars = list(dict.fromkeys(CJK.findall(html.unescape(text))))
    return "".join(chars[:16]) if len(chars) >= MIN_DISTINCT_CHARS else FALLBACK_LINE


def probe_page(page_html: str, line: str) -> str:
    """The page's own ``<head>`` (its CSS and font stack) with one big line of ``line``."""
    head = re.search(r"<head>.*?</head>", page_html, re.S)
    assert head, "page has no <head>"
    return (f'<!DOCTYPE html>\n<html lang="zh">\n{head.group(0)}\n<body>'
            f'<p style="font-size:48px;line-height:1.3;white-space:nowrap;margin:0;color:#000">'
            f"{html.escape(line)}</p></body>\n</html>\n")


def probe(page_html: str, workdir: Path, name: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    """Render the probe of ``page_html``; return its Chinese line and distinct ink columns."""
    line = probe_line(page_html)
    path = write(workdir / f"{name}.probe.html", probe_page(page_html, line))
    img = screenshot(path, workdir / f"{name}.probe.png", PROBE_SIZE, env)
    return line, glyph_columns(img)


# --- the pages --------------------------------------------------------------------


def _compare_page(root: Path) -> Path:
    """comparison.html of two evaluated runs named in Chinese (names are table cells)."""
    scheme = load_scheme("sos11")
    rng = np.random.default_rng(0)
    gold = Dataset([Row(f"id{i:02d}", f"post {i}", int(lab)) for i, lab in enumerate(rng.integers(0, 11, 40))])
    runs = []
    for name, p_right in (("强基线模型", 0.9), ("弱基线对照组", 0.4)):
        run = root / "runs" / name
        run.mkdir(parents=True)
        with (run / "predictions.jsonl").open("w", encoding="utf-8") as fh:
            for i, g in zip(gold.ids, gold.labels):
                row = {"id": i, "pred": g if rng.random() < p_right else (g + 4) % 11}
                if p_right > 0.5:  # the strong run has probabilities, sets and alerts: the screening section
                    p = rng.dirichlet(np.ones(11))
                    p[row["pred"]] += 1.5
                    row.update(proba=(p / p.sum()).round(6).tolist(), levels=[row["pred"]],
                               alerts={"recall>=0.9": bool(row["pred"] >= 5)})
                fh.write(json.dumps(row) + "\n")
        write_results(run, score_predictions(run / "predictions.jsonl", gold, scheme, n_boot=50), scheme, name=name)
        runs.append(run)
    # with the demo's banner and link, as `llm-aug demo` writes the page
    return compare_runs(runs, root / "compare", n_boot=50, banner=BANNER.format(n=132),
                        links=[("增强报告 (augmentation report)", "../augment/report.html")])["html"]


def _experiment_page(root: Path) -> Path:
    """report.html of a one-task experiment: majority baseline plus the fake LLM backend."""
    data = root / "data"
    for split in ("train", "val"):
        write(data / "fine" / f"{split}.tsv", (DEMO / f"{split}.tsv").read_text(encoding="utf-8"))
    cfg = {"data_dir": str(data), "tasks": ["fine"], "seeds": [0], "n_boot": 50, "screening": {},
           "systems": [{"name": "majority", "method": "majority", "train_sets": ["original"]},
                       {"name": "zs", "kind": "llm", "backend": {"kind": "fake", "replies": ['{"level": 4}']},
                        "limit": 10}]}
    path = write(root / "exp.yaml", yaml.safe_dump(cfg, allow_unicode=True))
    run_experiment(load_config(path), root / "experiment")
    return write_report(root / "experiment")["html"]


def _augment_page(root: Path) -> Path:
    """report.html of rule-based (EDA) augmentation of the demo corpus: Chinese samples."""
    out = root / "augment"
    run_augment(AugmentConfig(method="eda", task="fine", train=DEMO / "train.tsv", out=out, balance="8",
                              protect=[DEMO / "val.tsv"]))
    return out / "report.html"


def _grid_page(root: Path) -> Path:
    """matrix.html of a four-cell prompt matrix (two prompts x two models) on the demo corpus, fake backend."""
    from llm_aug.jobs.compare_matrix import compare_matrix

    llm = {"backend": {"kind": "fake", "replies": ["等级：4", "等级：6", "等级：2"]},
           "runner": {"cache_path": str(root / "cache.sqlite"), "quiet": True}}
    report = compare_matrix(["classify/scene.v1", "classify/scene_levels.v1"], "fine", DEMO / "val.tsv",
                            llm=llm, models=["fake-a", "fake-b"], out=root / "matrix", n_boot=50, html=True,
                            fail_if_worse="weighted_f1:0.01")
    page = report.html
    assert page is not None and page.name == "matrix.html"
    text = page.read_text(encoding="utf-8")
    assert text.count("<tr>") == 1 + 4 and "flips.jsonl" in text and "ΔF1" in text  # head + 4 cells
    return page


BUILDERS = {"compare": _compare_page, "experiment": _experiment_page, "augment": _augment_page,
            "grid": _grid_page}
# Pages whose own text is Chinese (the experiment report's text is English; its probe
# still renders Chinese with the page's CSS, as a post or system note there would).
CHINESE_PAGES = {"compare", "augment", "grid"}


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pages")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_page_renders_with_chinese_glyphs(name, pages, tmp_path):
    page = pages[name]
    page_html = page.read_text(encoding="utf-8")
    assert FONT_STACK in page_html
    if name in CHINESE_PAGES:
        assert len(set(CJK.findall(probe_line(page_html)))) >= MIN_DISTINCT_CHARS, "no Chinese text on the page"
        assert probe_line(page_html) != FALLBACK_LINE

    img = screenshot(page, tmp_path / f"{name}.png", PAGE_SIZE)
    ink = ink_fraction(img)
    assert ink > 0.005, f"{name}: the screenshot is (nearly) blank: {ink:.4%} of pixels differ from the background"

    line, columns = probe(page_html, tmp_path, name)
    assert columns >= MIN_GLYPH_COLUMNS, (
        f"{name}: {line!r} rendered as boxes (tofu) with the page's fonts: only {columns} distinct "
        f"pixel columns (need >= {MIN_GLYPH_COLUMNS}); is a CJK font installed and in the stack?")


@pytest.mark.parametrize("name", ["compare", "experiment"])
def test_the_screening_section_renders_tables_and_the_reliability_diagram(name, pages, tmp_path):
    """The risk-screening section alone, with the page's own CSS: its tables and its figure are drawn."""
    page_html = pages[name].read_text(encoding="utf-8")
    section = re.search(r'<section class="screening">.*?</section>', page_html, re.S)
    assert section, f"{name}: no risk-screening section"
    assert section.group(0).count("<table>") >= 2 and 'alt="reliability diagram" src="data:image/png;base64,' in \
        section.group(0)
    head = re.search(r"<head>.*?</head>", page_html, re.S).group(0)
    alone = write(tmp_path / f"{name}.screening.html",
                  f'<!DOCTYPE html>\n<html lang="en">\n{head}\n<body>{section.group(0)}</body>\n</html>\n')
    img = screenshot(alone, tmp_path / f"{name}.screening.png", PAGE_SIZE)
    ink = ink_fraction(img)
    assert ink > 0.02, f"{name}: the screening section is (nearly) blank: {ink:.4%} of pixels differ"
    # the reliability diagram itself was drawn: its lower half holds the image, not only table text
    lower = np.asarray(img)[PAGE_SIZE[1] // 3:]
    assert (np.abs(lower.astype(int) - 255) > 40).mean() > 0.01, f"{name}: no figure below the tables"


def test_the_tofu_check_sees_boxes_without_a_cjk_font(pages, tmp_path):
    """The negative control: hide every CJK font from fontconfig and the probe is tofu."""
    if FC_LIST is None:
        pytest.skip("fc-list not on PATH: cannot hide the CJK fonts from fontconfig")
    system = Path(os.environ.get("FONTCONFIG_FILE", "/etc/fonts/fonts.conf"))
    rejects = "".join(f"<glob>{html.escape(f)}</glob>" for f in _cjk_fonts())
    conf = write(tmp_path / "no-cjk.conf", (
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f'<include ignore_missing="yes">{html.escape(str(system))}</include>\n'
        f"<selectfont><rejectfont>{rejects}</rejectfont></selectfont>\n</fontconfig>\n"))
    page_html = pages["augment"].read_text(encoding="utf-8")
    line, real = probe(page_html, tmp_path, "with-cjk")
    _, tofu = probe(page_html, tmp_path, "without-cjk", env={"FONTCONFIG_FILE": str(conf)})
    assert real >= MIN_GLYPH_COLUMNS, f"{line!r}: {real} distinct columns with the CJK fonts"
    assert 0 < tofu < MIN_GLYPH_COLUMNS, f"{line!r}: {tofu} distinct columns without any CJK font, expected tofu"
    assert real > 5 * tofu
