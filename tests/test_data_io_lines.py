"""One row per line in every format: a stray quote never folds rows together (issue 11)."""

from __future__ import annotations

import json

import pytest

from conftest import write
from llm_aug.core.errors import DataError
from llm_aug.data.io import Row, load_dataset, write_tsv
from llm_aug.data.schemes import scheme_for_task

FINE, BINARY = scheme_for_task("fine"), scheme_for_task("binary")


def _rows(n: int = 200) -> list[tuple[str, int]]:
    rows = [(f"帖子{i}号", i % 11) for i in range(n)]
    rows[50] = ('"我说了一句', 3)      # opens a quote it never closes
    rows[60] = ('他说"好', 4)          # ... which a CSV reader would close here
    return rows


def test_tsv_stray_quote_keeps_every_row_and_label(tmp_path):
    rows = _rows()
    body = "comment\tmyLabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows)
    data = load_dataset(write(tmp_path / "t.tsv", body), FINE)
    assert len(data) == 200  # was 190: rows 51-61 folded into one post
    assert data.texts == [t for t, _ in rows] and data.labels == [y for _, y in rows]
    assert data.meta["data_lines"] == data.meta["rows"] == 200


def test_tsv_crlf_bom_and_stray_quote(tmp_path):
    body = "\ufeffcomment\tmyLabel\r\n" + "".join(f"{t}\t{y}\r\n" for t, y in _rows(80))
    data = load_dataset(write(tmp_path / "t.tsv", body.encode("utf-8")), FINE)
    assert len(data) == 80 and data.texts[50] == '"我说了一句' and data.texts[60] == '他说"好'


def test_tsv_quoted_fields_as_pandas_writes_them_are_unquoted(tmp_path):
    body = 'comment\tmyLabel\n"他说""再见"""\t9\n"""走饭"""\t2\n"好累"\t1\n"他"说"\t0\n'
    data = load_dataset(write(tmp_path / "t.tsv", body), FINE)
    assert data.texts == ['他说"再见"', '"走饭"', "好累", '"他"说"']


def test_tsv_quote_cannot_hide_a_tab_or_a_line(tmp_path):
    path = write(tmp_path / "t.tsv", 'comment\tmyLabel\n"一\t二"\t3\n')
    with pytest.raises(DataError, match=r"t.tsv:2: expected 2 fields, found 3"):
        load_dataset(path, FINE)
    path = write(tmp_path / "u.tsv", 'comment\tmyLabel\n"一\n二"\t3\n')
    with pytest.raises(DataError, match=r"u.tsv:2: expected 2 fields, found 1"):
        load_dataset(path, FINE)


def test_csv_runaway_quote_names_the_line_it_opened_on(tmp_path):
    rows = _rows()
    body = "comment,myLabel\n" + "".join(f"{t},{y}\n" for t, y in rows)
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path / "t.csv", body), FINE)
    message = str(err.value)
    assert "t.csv:52: a quoted field runs over lines 52-62" in message and "\n" not in message


def test_csv_quote_open_to_the_end_of_the_file(tmp_path):
    path = write(tmp_path / "t.csv", 'comment,myLabel\n好,1\n"坏,2\n中,3\n')
    with pytest.raises(DataError, match=r"t.csv:3: a quoted field runs over lines 3-4"):
        load_dataset(path, FINE)


def test_csv_quoting_still_works_on_one_line(tmp_path):
    path = write(tmp_path / "t.csv", 'comment,myLabel\n"你好,""世界""",3\n\n"一",4\n')
    data = load_dataset(path, FINE)
    assert data.texts == ['你好,"世界"', "一"] and data.meta["data_lines"] == 2


def test_jsonl_lines_end_only_at_newline(tmp_path):
    text = "第一句\u2028第二句\x85第三句"
    path = write(tmp_path / "t.jsonl", json.dumps({"comment": text, "myLabel": 1}, ensure_ascii=False) + "\n")
    assert len(load_dataset(path, FINE)) == 1


def test_write_tsv_round_trips_leading_quotes_and_refuses_line_breaks(tmp_path):
    rows = [Row("a", '"开头的引号', 1), Row("b", '结尾的引号"', 2), Row("c", '"整句"', 3)]
    write_tsv(rows, tmp_path / "t.tsv")
    assert load_dataset(tmp_path / "t.tsv", FINE).texts == [r.text for r in rows]
    with pytest.raises(DataError, match="tab or line break"):
        write_tsv([Row("d", "一\n二", 1)], tmp_path / "u.tsv")


@pytest.mark.parametrize("task, scheme", [("fine", FINE), ("binary", BINARY)])
def test_sos1k_files_keep_their_row_counts(sos1k_dir, task, scheme):
    for split, n in (("train", 799), ("val", 200)):
        path = sos1k_dir / task / f"{split}.tsv"
        data = load_dataset(path, scheme)
        lines = [ln for ln in path.read_text(encoding="utf-8").split("\n")[1:] if ln.strip()]
        assert len(data) == len(lines) == n == data.meta["data_lines"]
        assert not any(t.startswith('"') for t in data.texts)  # the one quoted post is unquoted
