"""What a new user meets in the first hour (issue 19, part 6): each friction has a test here.

* a typo in a name gets "did you mean";
* a missing column names the options that map columns;
* ``augment --balance max`` on a balanced file says why it adds nothing, and what to ask;
* ``corpus.tsv`` marks every synthetic row, and our own commands still read it;
* the augmentation report shows each sample beside the post it came from.

(The demo's last lines and pages are checked in ``test_cli.py``; the test-model hint in
``test_local_model.py``; every README block in ``test_readme_blocks.py``.)
"""

from __future__ import annotations

import csv
import html
import json
import re

import pytest

from clirun import assert_ok, invoke
from conftest import DEMO, write
from llm_aug.core.errors import UserError, did_you_mean
from llm_aug.data.io import load_dataset
from llm_aug.data.schemes import scheme_for_task

TRAIN, VAL = DEMO / "train.tsv", DEMO / "val.tsv"


def _error(result) -> str:
    assert isinstance(result.exception, UserError), (result.exit_code, result.stderr, result.exception)
    return str(result.exception)


def test_did_you_mean_picks_the_closest_name_or_nothing():
    methods = ["majority", "tfidf-lr", "tfidf-svm", "stack"]
    assert did_you_mean("tfidf-svn", methods) == "; did you mean 'tfidf-svm'?"
    assert did_you_mean("TFIDF-SVM", methods) == "; did you mean 'tfidf-svm'?"
    assert did_you_mean("xgboost", methods) == ""


@pytest.mark.parametrize("args, wanted", [
    (["train", "--task", "fine", "--method", "tfidf-svn", "--train", TRAIN, "--val", VAL, "--out", "{tmp}/m"],
     "'tfidf-svm'"),
    (["train", "--task", "fien", "--method", "majority", "--train", TRAIN, "--val", VAL, "--out", "{tmp}/m"],
     "'fine'"),
    (["augment", "--method", "synonyms", "--task", "fine", "--train", TRAIN, "--protect", VAL,
      "--out", "{tmp}/a"], "'synonym'"),
    (["prompts", "show", "classify/scene_level"], "'classify/scene_levels'"),
])
def test_a_typo_gets_did_you_mean(tmp_path, args, wanted):
    message = _error(invoke(*[str(a).replace("{tmp}", str(tmp_path)) for a in args]))
    assert f"did you mean {wanted}?" in message, message
    assert "\n" not in message


def test_a_missing_column_names_the_column_options(tmp_path):
    data = write(tmp_path / "mine.tsv", "text\tlabel\n好累\t1\n")
    message = _error(invoke("data", "stats", data, "--task", "fine"))
    assert "missing column(s) comment;" in message and "--text-col" in message and "--label-col" in message
    one = write(tmp_path / "one.tsv", "Comment\tmyLabel\n好累\t1\n")
    assert "did you mean 'Comment'?" in _error(invoke("data", "stats", one, "--task", "fine"))
    unlabelled = write(tmp_path / "nolabel.tsv", "comment\tlabel\n好累\t1\n")
    message = _error(invoke("train", "--task", "fine", "--method", "majority", "--train", unlabelled,
                            "--val", VAL, "--out", tmp_path / "m"))
    assert "missing column(s) myLabel; did you mean 'label'?" in message and "--label-col" in message
    # and the options it names do the job
    assert_ok(invoke("data", "stats", data, "--task", "fine", "--text-col", "text", "--label-col", "label"))


def test_balance_max_on_a_balanced_file_says_why_nothing_is_added(tmp_path):
    result = assert_ok(invoke("augment", "--method", "synonym", "--task", "fine", "--train", TRAIN,
                              "--protect", VAL, "--balance", "max", "--out", tmp_path / "a"))
    assert "0 synthetic posts added" in result.stdout
    note = next(line for line in result.stderr.splitlines() if "nothing to add" in line)
    assert "already has that many" in note and "(6 posts)" in note and "--balance 12" in note
    assert "nothing to add" in (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    # a plan that needs posts says nothing of the kind
    more = assert_ok(invoke("augment", "--method", "synonym", "--task", "fine", "--train", TRAIN,
                            "--protect", VAL, "--balance", "7", "--out", tmp_path / "b"))
    assert "nothing to add" not in more.stderr


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
    out = tmp_path_factory.mktemp("aug") / "out"
    assert_ok(invoke("augment", "--method", "synonym", "--task", "fine", "--train", TRAIN, "--protect", VAL,
                     "--balance", "8", "--out", out))
    return out


def test_corpus_tsv_marks_every_synthetic_row(augmented):
    with (augmented / "corpus.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    provenance = [json.loads(line) for line in (augmented / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    assert list(rows[0]) == ["comment", "myLabel", "synthetic"]  # SOS-1K columns first
    assert [r["synthetic"] for r in rows] == ["1" if p["synthetic"] else "0" for p in provenance]
    assert [r["comment"] for r in rows] == [p["text"] for p in provenance]
    assert sum(r["synthetic"] == "1" for r in rows) == 22 and sum(r["synthetic"] == "0" for r in rows) == 66


def test_our_own_commands_still_read_corpus_tsv(augmented, tmp_path):
    corpus = load_dataset(augmented / "corpus.tsv", scheme_for_task("fine"))
    assert len(corpus) == 88 and set(corpus.labels) == set(range(11))
    stats = json.loads(assert_ok(invoke("data", "stats", augmented / "corpus.tsv", VAL, "--task", "fine",
                                        "--json")).stdout)
    assert stats["files"][0]["rows"] == 88
    assert_ok(invoke("train", "--task", "fine", "--method", "majority", "--train", augmented / "corpus.tsv",
                     "--val", VAL, "--out", tmp_path / "m"))
    assert (tmp_path / "m" / "val_predictions.jsonl").is_file()


def test_report_shows_each_sample_beside_its_source(augmented):
    train = {r.text for r in load_dataset(TRAIN).rows}
    page = (augmented / "report.html").read_text(encoding="utf-8")
    cells = re.findall(r'<tr><td class="tag">(L\d+ · synonym)</td><td><span class="tag">source post</span><br>'
                       r'<span class="post" lang="zh">(.*?)</span></td><td><span class="post" lang="zh">(.*?)</span>',
                       page)
    assert len(cells) == 11 * 2  # 3 samples per level asked, 2 accepted per level
    synthetic = {json.loads(line)["text"] for line in (augmented / "corpus.jsonl").read_text().splitlines()
                 if json.loads(line)["synthetic"]}
    for _, source, result in cells:
        assert html.unescape(source) in train and html.unescape(result) in synthetic
        assert source != result
    md = (augmented / "report.md").read_text(encoding="utf-8")
    assert "| level · method | made from | synthetic post |" in md and md.count("| source post: ") == 22
