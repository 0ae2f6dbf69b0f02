"""The base URL has one shape from the CLI to the backend: ``list[str]``, checked once.

The config model coerces a single string (``--llm-config`` files, the Python API) to a
one-element list and is the only place URL form and repeats are refused; run configs keep
writing one URL as a string, so manifests stay byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_aug.cli.llm_options import llm_config
from llm_aug.core.errors import UserError
from llm_aug.llm import load_llm_config
from llm_aug.llm.batch import BatchMode
from llm_aug.llm.privacy import check_url_form

A, B = "http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"


def _backend(base_url):
    return load_llm_config({"backend": {"kind": "openai", "model": "m", "base_url": base_url}}).backend


@pytest.mark.parametrize("given", [A, [A], [A, B]])
def test_every_accepted_form_is_a_list_of_str(given):
    urls = _backend(given).base_url
    assert urls == ([given] if isinstance(given, str) else given)
    assert all(isinstance(url, str) for url in urls)


def test_cli_flags_and_a_config_string_give_the_same_config(tmp_path: Path):
    cache = tmp_path / "c.sqlite"
    from_flags = llm_config("openai", [A], "m", 8, False, None, cache)
    file = tmp_path / "llm.yaml"
    file.write_text(f"backend:\n  kind: openai\n  model: m\n  base_url: {A}\n"
                    f"runner:\n  concurrency: 8\n  quiet: false\n", encoding="utf-8")
    from_file = llm_config("openai", None, None, 8, False, file, cache)
    assert from_flags.backend.base_url == from_file.backend.base_url == [A]


def test_run_configs_write_one_url_as_a_string_and_replicas_as_a_list():
    assert _backend(A).model_dump(mode="json")["base_url"] == A
    assert _backend([A]).model_dump()["base_url"] == A
    assert _backend([A, B]).model_dump(mode="json")["base_url"] == [A, B]


@pytest.mark.parametrize("bad", ["http://user:secret@127.0.0.1:8000/v1", "http://127.1:8000/v1",
                                 "ftp://127.0.0.1/v1"])
def test_form_errors_are_the_privacy_checks_own_words(bad):
    with pytest.raises(UserError) as expected:
        check_url_form(bad)
    for given in (bad, [A, bad]):
        with pytest.raises(UserError) as got:
            _backend(given)
        assert str(got.value).endswith(f": {expected.value}")
        assert "secret" not in str(got.value)


def test_batches_go_to_the_first_url(tmp_path: Path):
    mode = BatchMode(mode="export", run_dir=tmp_path)
    mode.attach(_backend([B, A]))
    assert mode.base_url == B
    mode.attach(_backend(A))
    assert mode.base_url == A
