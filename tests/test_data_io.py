"""Loader and validation: every malformed-file case gives a DataError naming file and line."""

from __future__ import annotations

import json

import pytest

from conftest import write
from llm_aug.core.errors import DataError, UserError
from llm_aug.data.io import content_id, load_dataset, write_tsv
from llm_aug.data.normalize import NormalizeConfig, normalize_for_match, normalize_text
from llm_aug.data.schemes import load_scheme, scheme_for_task
from llm_aug.data.stats import overlap_key

FINE = scheme_for_task("fine")


def test_loads_sos_tsv_with_quoting_and_html(tmp_path):
    body = ('comment\tmyLabel\n'
            '今天好累&nbsp;&nbsp;不想上班\t0\n'
            '"有人一起吗 <a  href=""x"" action-type=""photo""><i class=""i"">?</i>评论配图</a>"\t4\n')
    data = load_dataset(write(tmp_path / "t.tsv", body), FINE)
    assert data.texts == ["今天好累 不想上班", "有人一起吗"]
    assert data.labels == [0, 4]
    assert data.ids[0] == content_id("今天好累 不想上班")


def test_normalisation_can_be_switched_off():
    raw = "a&nbsp;b  <b>c</b>"
    assert normalize_text(raw) == "a b c"
    off = NormalizeConfig(unescape_html=False, strip_tags=False, collapse_whitespace=False)
    assert normalize_text(raw, off) == raw


def test_one_match_key_for_exact_copies_and_similarity():
    # Punctuation (full-width too), spaces, emoji, underscores and case never hide a copy.
    assert normalize_for_match("我 好累!! ABC_1😢，。") == "我好累abc1"
    # Lower-cased before stripping, for the split-overlap key as for the n-gram filters:
    # the combining dot that U+0130 gains when lower-cased goes too.
    assert overlap_key("İ好") == normalize_for_match("İ好") == "i好"


def test_repeated_text_gets_distinct_stable_ids(tmp_path):
    path = write(tmp_path / "t.tsv", "comment\tmyLabel\n同一句话\t1\n同一句话\t2\n")
    ids = load_dataset(path, FINE).ids
    assert ids[1] == ids[0] + "-2"
    assert load_dataset(path, FINE).ids == ids


@pytest.mark.parametrize(
    "body, message",
    [
        ("comment\tmyLabel\n好\t11\n", "t.tsv:2: label 11 is outside scheme 'sos11'"),
        ("comment\tmyLabel\n好\t-1\n", "t.tsv:2: label -1 is outside"),
        ("comment\tmyLabel\n好\tfive\n", "t.tsv:2: label 'five' is not an integer"),
        ("comment\tmyLabel\n好\t1\n \t2\n", "t.tsv:3: empty text"),
        ("comment\tmyLabel\n好\t\n", "t.tsv:2: missing label"),
        ("text\tlabel\n好\t1\n", "missing column(s) comment, myLabel"),
        ("comment\tmyLabel\n好\t1\textra\n", "t.tsv:2: expected 2 fields, found 3"),
        ("", "file is empty"),
        ("comment\tmyLabel\n", "no data rows"),
    ],
)
def test_malformed_tsv(tmp_path, body, message):
    path = write(tmp_path / "t.tsv", body)
    with pytest.raises(DataError) as err:
        load_dataset(path, FINE)
    assert message in str(err.value)
    assert str(path.name) in str(err.value)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = write(tmp_path / "t.tsv", "comment\tmyLabel\n好\t1\n".encode() + b"\xff\xfe bad\t2\n")
    with pytest.raises(DataError, match=r"t.tsv:3: bytes are not valid UTF-8"):
        load_dataset(path, FINE)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_dataset(tmp_path / "nope.tsv", FINE)


def test_duplicate_ids_with_id_column(tmp_path):
    path = write(tmp_path / "t.csv", "id,text,y\na,好,1\nb,坏,2\na,中,3\n")
    with pytest.raises(DataError, match=r"t.csv:4: duplicate id 'a' \(first at line 2\)"):
        load_dataset(path, FINE, text_col="text", label_col="y", id_col="id")


def test_generic_csv_and_jsonl_with_column_mapping(tmp_path):
    csv_path = write(tmp_path / "d.csv", 'pid,post,level\nx1,"你好,世界",3\n')
    data = load_dataset(csv_path, FINE, text_col="post", label_col="level", id_col="pid")
    assert (data.ids, data.texts, data.labels) == (["x1"], ["你好,世界"], [3])
    lines = [json.dumps({"post": "一", "level": 2}, ensure_ascii=False), "{not json"]
    bad = write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl:2: invalid JSON"):
        load_dataset(bad, FINE, text_col="post", label_col="level")


def test_unlabelled_rows_allowed_for_prediction(tmp_path):
    path = write(tmp_path / "u.tsv", "comment\n只有文本\n")
    data = load_dataset(path, FINE, require_labels=False)
    assert data.labels == [None]


def test_tsv_round_trip_keeps_tabs_and_quotes_safe(tmp_path):
    src = write(tmp_path / "a.tsv", 'comment\tmyLabel\n"他说""再见"""\t9\n')
    rows = load_dataset(src, FINE).rows
    write_tsv(rows, tmp_path / "b.tsv")
    assert load_dataset(tmp_path / "b.tsv", FINE).rows == rows


def test_schemes_are_data_files():
    fine, binary = load_scheme("sos11"), load_scheme("binary")
    assert fine.labels == list(range(11)) and fine.ordinal and fine.binary_threshold == 6
    assert binary.labels == [0, 1] and not binary.ordinal
    assert all(lv.definition_zh and lv.definition_en for lv in fine.levels)
    with pytest.raises(UserError, match="unknown label scheme"):
        load_scheme("nope")


def test_real_sos1k_files_load(sos1k_dir):
    train = load_dataset(sos1k_dir / "fine" / "train.tsv", FINE)
    assert len(train) == 799
    assert not any("<a" in t or "&nbsp;" in t for t in train.texts)
