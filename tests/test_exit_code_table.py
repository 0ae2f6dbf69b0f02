"""One exit-code table (``llm_aug.core.exit_codes``) behind the commands, their ``--help``
lists and README.md's "Exit codes" (issue 20)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from llm_aug.cli.augment import augment
from llm_aug.cli.common import exit_codes
from llm_aug.cli.llm import classify
from llm_aug.cli.prompts import compare
from llm_aug.core.exit_codes import ExitCode, help_lines

REPO = Path(__file__).resolve().parents[1]
HELP_LINE = re.compile(r"^(\d+) +(\S.*)$")


def _readme_codes() -> list[int]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n### Exit codes\n", 1)[1].split("\n#", 1)[0]
    return [int(code) for code in re.findall(r"^- `(\d+)`:", section, re.MULTILINE)]


def test_readme_documents_exactly_the_table():
    documented = _readme_codes()
    assert documented == sorted(set(documented)), "listed twice or out of order"
    assert documented == sorted(int(code) for code in ExitCode)


def _help_codes(command) -> list[tuple[int, str]]:
    doc = inspect.cleandoc(command.__doc__)
    block = doc.split("Exit codes", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [(int(m[1]), m[2]) for m in map(HELP_LINE.match, (line.strip() for line in block)) if m]


@pytest.mark.parametrize("command", [classify, augment, compare], ids=lambda c: c.__name__)
def test_help_lists_come_from_the_table(command):
    listed = _help_codes(command)
    assert listed and [code for code, _ in listed] == sorted(code for code, _ in listed)
    assert {code for code, _ in listed} <= {int(code) for code in ExitCode}
    shared = {code: text for code, text in listed if code in (ExitCode.USER_ERROR, ExitCode.TERMINATED)}
    assert shared == {ExitCode.USER_ERROR: ExitCode.USER_ERROR.meaning,
                      ExitCode.TERMINATED: ExitCode.TERMINATED.meaning}


def _every_command() -> list[tuple[str, object]]:
    """(name, callback) of every command of the root app and its groups."""
    from llm_aug.cli import app

    out = [(info.name or info.callback.__name__, info.callback) for info in app.registered_commands]
    for group in app.registered_groups:
        out += [(f"{group.name} {info.name or info.callback.__name__}", info.callback)
                for info in group.typer_instance.registered_commands]
    return out


@pytest.mark.parametrize("name,command", _every_command(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_lists_its_exit_codes_from_the_table(name, command):
    listed = dict(_help_codes(command))
    assert ExitCode.OK in listed and ExitCode.USER_ERROR in listed, name
    assert set(listed) <= {int(code) for code in ExitCode}
    if ExitCode.TERMINATED in listed:
        assert listed[ExitCode.TERMINATED] == ExitCode.TERMINATED.meaning


def test_the_commands_that_exit_1_3_or_4_list_it():
    listed = {name: set(dict(_help_codes(command))) for name, command in _every_command()}
    assert ExitCode.STEPS_FAILED in listed["experiment run"]
    assert {ExitCode.LEVEL_SHORT, ExitCode.ROWS_FAILED} <= listed["batch collect"]
    assert [n for n, codes in listed.items() if ExitCode.STEPS_FAILED in codes] == ["experiment run"]


def test_only_augment_lists_the_short_level_code():
    assert ExitCode.LEVEL_SHORT in dict(_help_codes(augment))
    assert ExitCode.LEVEL_SHORT not in dict(_help_codes(classify)) | dict(_help_codes(compare))


def test_help_lines_take_the_command_wording_or_the_table():
    lines = help_lines({ExitCode.TERMINATED: None, ExitCode.OK: "all done"})
    assert lines == ["0    all done", f"143  {ExitCode.TERMINATED.meaning}"]


def test_a_docstring_without_the_slot_is_refused():
    def command() -> None:
        """No exit codes here."""

    with pytest.raises(ValueError, match="no {exit_codes} line"):
        exit_codes({ExitCode.OK: None})(command)


def test_named_codes_are_the_table_members():
    from llm_aug.cli.llm import EXIT_ROWS_FAILED
    from llm_aug.cli.signals import EXIT_TERMINATED
    from llm_aug.jobs.augment import EXIT_SHORT

    assert EXIT_ROWS_FAILED is ExitCode.ROWS_FAILED and EXIT_SHORT is ExitCode.LEVEL_SHORT
    assert EXIT_TERMINATED is ExitCode.TERMINATED


def test_commands_exit_through_the_table():
    """No command exits with a bare number: every code is a member of the table."""
    bare = re.compile(r"\b(?:typer\.Exit|SystemExit|sys\.exit)\(\s*\d")
    found = [f"{path.relative_to(REPO)}:{n}" for path in sorted((REPO / "llm_aug").rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if bare.search(line)]
    assert not found
