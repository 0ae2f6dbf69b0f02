"""The one report renderer: every page template is strict, escapes post text in HTML,
carries the CJK font stack, and ships as package data."""

from __future__ import annotations

import copy
import fnmatch
from importlib import resources

import jinja2
import pytest

from conftest import REPO
from llm_aug.eval.render import FONT_STACK, TEMPLATE_DIR, md_table, page_templates, render

POST = "好累<script>alert(1)</script> & 挂科了"
PNG = b"\x89PNG fake"
TABLE = (["System", "n"], [["paper: best †", "—"], [POST, "7"]])
# The risk-screening section with nothing to show (runs without probabilities): renders nothing.
NO_SCREENING = {"calibration": None, "operating": None, "sets": None, "note": "ECE.", "reliability": None}

# One full context per page template; every branch is taken, so every key is read.
CONTEXTS: dict[str, dict] = {
    "compare.md.jinja": {"scheme": "sos11", "scheme_title": "fine (11 levels)", "task": "fine", "table": TABLE,
                         "notes": "Intervals: 95%.", "banner": "Demo numbers are not results.",
                         "links": [{"text": "Augmentation report", "href": "../augmented/report.html"}],
                         "metric": "weighted_f1", "bars_file": "weighted_f1_bars.png", "split": "test",
                         "split_title": "TEST split (33 posts)", "screening": NO_SCREENING},
    "compare.html.jinja": {"scheme": "sos11", "scheme_title": "fine (11 levels)", "task": "fine", "table": TABLE,
                           "best": [True, False], "banner": POST,
                           "links": [{"text": POST, "href": "../augmented/report.html"}],
                           "notes": "Intervals: 95%.", "metric": "weighted_f1", "bars": PNG, "split": "test",
                           "n_posts": "33", "split_title": "TEST split (33 posts)", "screening": NO_SCREENING,
                           "confusions": [{"name": POST, "png": PNG}, {"name": "no image", "png": None}]},
    "experiment.md.jinja": {
        "name": "sos1k", "notes": ["Ours: VAL.", "† Paper rows."], "cost_note": "Seconds are wall time.",
        "tasks": [{"title": "Fine-grained risk", "reference": "svm", "results": TABLE, "gains": TABLE,
                   "cost": TABLE, "bars": {"caption": "fine: weighted F1", "png": PNG, "path": "report_files/f.png"},
                   "screening": NO_SCREENING,
                   "confusions": [{"caption": POST, "png": PNG, "path": "results/fine/x/confusion.png"}]}],
        "status": (["Step", "Status", "Reason"], [["fine/gone/s0", "skipped", POST]]),
    },
    "experiment.html.jinja": {
        "name": "sos1k", "notes": ["Ours: VAL.", POST], "cost_note": "Seconds are wall time.",
        "tasks": [{"title": "Fine-grained risk", "reference": "svm", "results": TABLE, "gains": TABLE,
                   "cost": TABLE, "bars": {"caption": "fine: weighted F1", "png": PNG}, "screening": NO_SCREENING,
                   "confusions": [{"caption": POST, "png": PNG}]}],
        "status": (["Step", "Status", "Reason"], [["fine/gone/s0", "skipped", POST]]),
    },
    "experiment_summary.md.jinja": {
        "intro": "Produced by `llm-aug experiment report`.",
        "tasks": [{"title": "Fine-grained risk", "table": TABLE, "gains": TABLE}],
    },
    "augment.md.jinja": {"title": "Augmentation report: llm, balance 11",
                         "status": {"short": ["level 10: 0 of 2 posts accepted, 2 short (target 8)"],
                                    "rounds": 3, "n_candidates": 40},
                         "tables": [{"title": "Posts per level", "table": TABLE}],
                         "links": [{"text": "Comparison", "href": "../report/comparison.html"}],
                         "samples": [{"tag": "L3 · llm | x", "text": POST, "source": "原帖|一",
                                      "source_kind": "source post"}]},
    "augment.html.jinja": {"title": "Augmentation report: llm, balance 11",
                           "status": {"short": ["level 10: 0 of 2 posts accepted, 2 short (target 8)"],
                                      "rounds": 3, "n_candidates": 40},
                           "tables": [{"title": "Posts per level", "table": TABLE}],
                           "links": [{"text": "Comparison", "href": "../report/comparison.html"}],
                           "samples": [{"tag": "L3 · llm", "text": POST, "source": "原帖<b>",
                                        "source_kind": "source post"}]},
}
HTML = [name for name in CONTEXTS if name.endswith(".html.jinja")]
KEYS = [(name, key) for name, ctx in CONTEXTS.items() for key in ctx]


def test_every_page_template_has_a_context():
    assert sorted(CONTEXTS) == page_templates()


@pytest.mark.parametrize("name, key", KEYS, ids=[f"{n}-{k}" for n, k in KEYS])
def test_a_missing_key_fails(name, key):
    ctx = {k: v for k, v in CONTEXTS[name].items() if k != key}
    with pytest.raises(jinja2.UndefinedError):
        render(name, **ctx)


@pytest.mark.parametrize("name", ["experiment.md.jinja", "experiment.html.jinja"])
def test_a_missing_nested_key_fails(name):
    ctx = copy.deepcopy(CONTEXTS[name])
    del ctx["tasks"][0]["reference"]
    with pytest.raises(jinja2.UndefinedError):
        render(name, **ctx)


@pytest.mark.parametrize("name", HTML)
def test_html_escapes_post_text_and_carries_the_cjk_fonts(name):
    page = render(name, **CONTEXTS[name])
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 挂科了" in page
    assert f"font-family:{FONT_STACK};" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert '<meta charset="utf-8">' in page


def test_compare_pages():
    md = render("compare.md.jinja", **CONTEXTS["compare.md.jinja"])
    assert md == (
        "# Comparison: fine (11 levels), TEST split (33 posts)\n\n> **Demo numbers are not results.**\n\n"
        "Task fine (label scheme sos11).\nSee also: [Augmentation report](../augmented/report.html).\n\n"
        "| System | n |\n|---|---|\n"
        f"| paper: best † | — |\n| {POST} | 7 |\n\nIntervals: 95%.\n\n"
        "![weighted_f1 on test](weighted_f1_bars.png)\n")
    plain = render("compare.md.jinja", **{**CONTEXTS["compare.md.jinja"], "banner": "", "links": []})
    assert plain.startswith("# Comparison: fine (11 levels), TEST split (33 posts)\n\n"
                            "Task fine (label scheme sos11).\n\n|")
    page = render("compare.html.jinja", **CONTEXTS["compare.html.jinja"])
    assert '<tr class="best"><td>paper: best †</td><td>—</td></tr>' in page
    assert page.count('src="data:image/png;base64,') == 2 and "<figure>n/a<figcaption>no image" in page
    assert "<title>llm-aug comparison: fine (11 levels), TEST split (33 posts)</title>" in page
    assert "<h1>Comparison: fine (11 levels), TEST split (33 posts)</h1>" in page
    assert '<p class="banner" role="note">好累&lt;script&gt;' in page  # the banner, escaped
    assert '<nav><p><a href="../augmented/report.html">好累&lt;script&gt;' in page
    plain = render("compare.html.jinja", **{**CONTEXTS["compare.html.jinja"], "banner": "", "links": []})
    assert 'class="banner"' not in plain and "<nav>" not in plain
    assert '<div class="grid">' in page and ".grid{display:grid;" in page


def test_experiment_pages():
    md = render("experiment.md.jinja", **CONTEXTS["experiment.md.jinja"])
    assert md.startswith("# Experiment report: sos1k\n\nOurs: VAL.\n\n† Paper rows.\n\n## Fine-grained risk\n\n"
                         "Reference baseline: svm.\n\n| System | n |\n")
    for text in ("\n### Augmentation: each augmented train set vs the original\n\n",
                 "\n### Cost and time (mean per seed)\n\n", "\nSeconds are wall time.\n\n",
                 "\n### Weighted F1 by system\n\n![fine: weighted F1](report_files/f.png)\n\n",
                 "\n### Confusion matrices (first seed)\n\n![" + POST + "](results/fine/x/confusion.png)\n\n"):
        assert text in md, text
    assert md.endswith("## Steps without results\n\n| Step | Status | Reason |\n|---|---|---|\n"
                       f"| fine/gone/s0 | skipped | {POST} |\n")
    page = render("experiment.html.jinja", **CONTEXTS["experiment.html.jinja"])
    assert page.count('<tr class="paper"><td>paper: best †</td>') == 2  # results and gains, not cost
    assert "<title>llm-aug experiment: sos1k</title>" in page and "<h2>Steps without results</h2>" in page


def test_experiment_summary_is_the_readme_block_format():
    md = render("experiment_summary.md.jinja", **CONTEXTS["experiment_summary.md.jinja"])
    table = f"| System | n |\n|---|---|\n| paper: best † | — |\n| {POST} | 7 |\n"
    assert md == ("Produced by `llm-aug experiment report`.\n\n#### Fine-grained risk\n\n" + table +
                  "\nAugmented train sets, each against the same system on the original set:\n\n" + table)


def test_augment_pages_show_status_as_data():
    md = render("augment.md.jinja", **CONTEXTS["augment.md.jinja"])
    assert md.startswith("# Augmentation report: llm, balance 11\n\nSee also: [Comparison](../report/comparison.html)."
                         "\n\n**Not balanced: these levels could not be "
                         "filled (nothing was padded):**\n\n- level 10: 0 of 2 posts accepted, 2 short (target 8)"
                         "\n\n3 round(s), 40 candidates.\n\n## Posts per level\n\n")
    assert md.endswith("| level · method | made from | synthetic post |\n|---|---|---|\n"
                       f"| L3 · llm \\| x | source post: 原帖\\|一 | {POST} |\n")
    done = {**CONTEXTS["augment.md.jinja"], "status": {"short": [], "rounds": 1, "n_candidates": 9}, "samples": [],
            "links": []}
    md = render("augment.md.jinja", **done)
    assert "\n\nAll levels reached their targets.\n\n1 round(s), 9 candidates.\n\n" in md
    assert md.endswith("## Samples\n\n(none)\n")
    assert render("augment.md.jinja", **{**done, "status": None}).startswith(
        "# Augmentation report: llm, balance 11\n\n## Posts per level\n")
    page = render("augment.html.jinja", **CONTEXTS["augment.html.jinja"])
    assert "<li>level 10: 0 of 2 posts accepted, 2 short (target 8)</li>" in page and "**" not in page
    # source and result side by side, in one row, both escaped
    assert ('<td><span class="tag">source post</span><br><span class="post" lang="zh">原帖&lt;b&gt;</span></td>'
            '<td><span class="post" lang="zh">好累&lt;script&gt;') in page
    noted = {**CONTEXTS["augment.html.jinja"], "status": {"short": [], "rounds": 0, "n_candidates": 0,
                                                          "notes": ["nothing to add: use --balance N"]}}
    assert "<p><strong>nothing to add: use --balance N</strong></p>" in render("augment.html.jinja", **noted)


def test_md_table_escapes_pipes():
    assert md_table((["a|b"], [["c|d"]])) == "| a\\|b |\n|---|\n| c\\|d |"


def test_templates_ship_as_package_data():
    """pyproject's package-data for llm_aug.eval matches every template, and the
    installed package finds them where the renderer looks."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["llm_aug.eval"]
    files = sorted(p.relative_to(TEMPLATE_DIR.parent).as_posix() for p in TEMPLATE_DIR.iterdir())
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files
    installed = resources.files("llm_aug.eval") / "templates"
    assert sorted(p.name for p in installed.iterdir()) == sorted(p.name for p in TEMPLATE_DIR.iterdir())
