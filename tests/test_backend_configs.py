"""Each backend module declares its own config, which builds its backend (issue 20).

``llm_aug.llm.config`` only gathers the classes into the tagged union ``BackendConfig``
and re-exports them; ``make_backend`` asks the config to build. Importing the configs
loads no engine, SDK or HTTP client.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter, ValidationError

from llm_aug.llm import config as llm_config
from llm_aug.llm.backends import make_backend
from llm_aug.llm.config import BackendConfig, LLMConfig, backend_kinds
from llm_aug.llm.settings import BackendSettings

# kind -> (module declaring the config, module and name of the backend, an example config)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "openai": ("openai_config", "openai_compat:OpenAICompatBackend",
               {"model": "m", "base_url": ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]}),
    "vllm": ("vllm", "vllm:VLLMBackend", {"model": "q", "batch_size": 16}),
    "llamacpp": ("llamacpp", "llamacpp:LlamaCppBackend", {"model_path": "MODEL", "n_ctx": 512}),
    "langchain": ("langchain", "langchain:LangChainBackend",
                  {"model": "lc", "chat_model": "types:SimpleNamespace", "kwargs": {"temperature": 0.5}}),
    "fake": ("fake", "fake:FakeBackend", {"replies": ["好"]}),
}
PACKAGE = "llm_aug.llm.backends"


def _members() -> dict[str, type[BackendSettings]]:
    return {cls.model_fields["kind"].default: cls for cls in get_args(get_args(BackendConfig)[0])}


def _example(kind: str, tmp_path: Path) -> dict[str, Any]:
    example = dict(CASES[kind][2])
    if example.get("model_path") == "MODEL":
        (tmp_path / "tiny.gguf").write_bytes(b"GGUF")  # found now, loaded only on the first call
        example["model_path"] = str(tmp_path / "tiny.gguf")
    return example


def test_every_kind_of_the_union_is_covered_here() -> None:
    assert sorted(_members()) == backend_kinds() == sorted(CASES)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_kind_builds_its_backend_from_its_own_module(kind: str, tmp_path: Path) -> None:
    config_module, backend_path, _ = CASES[kind]
    cls = _members()[kind]
    assert cls.__module__ == f"{PACKAGE}.{config_module}"
    assert getattr(llm_config, cls.__name__) is cls  # still importable from llm_aug.llm.config
    module, _, name = backend_path.partition(":")
    backend_cls = getattr(importlib.import_module(f"{PACKAGE}.{module}"), name)
    config = cls(**_example(kind, tmp_path))
    for built in (make_backend(config), make_backend({"kind": kind, **_example(kind, tmp_path)})):
        assert type(built) is backend_cls
        assert built.model == (config.model if kind != "llamacpp" else "tiny.gguf")


def test_built_backends_carry_the_config_values(tmp_path: Path) -> None:
    openai = make_backend({"kind": "openai", **_example("openai", tmp_path)})
    assert openai.base_urls == ["http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"]
    assert make_backend({"kind": "vllm", "model": "q", "batch_size": 16}).batch_size == 16
    chain = make_backend({"kind": "langchain", **_example("langchain", tmp_path)})
    assert chain.chat_model.temperature == 0.5


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_config_of_one_kind_is_refused_by_the_others(kind: str, tmp_path: Path) -> None:
    example = {"kind": kind, **_example(kind, tmp_path)}
    for other_kind, other in _members().items():
        if other_kind != kind:
            with pytest.raises(ValidationError):
                other.model_validate(example)
    assert type(TypeAdapter(BackendConfig).validate_python(example)) is _members()[kind]


def test_a_mixed_config_and_an_unknown_kind_are_refused() -> None:
    with pytest.raises(ValidationError, match="base_url"):  # an openai key on a fake backend
        make_backend({"kind": "fake", "base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(ValidationError):
        LLMConfig.model_validate({"backend": {"kind": "nope", "model": "m"}})

    class Foreign:
        kind = "nope"
    with pytest.raises(ValueError, match=r"unknown backend kind 'nope'; known: \['fake', 'langchain', "
                                         r"'llamacpp', 'openai', 'vllm'\]"):
        make_backend(Foreign())  # type: ignore[arg-type]


def test_reading_the_configs_imports_no_engine_nor_http_client() -> None:
    code = ("import json, sys\nimport llm_aug.llm.config\n"
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(json.loads(proc.stdout.splitlines()[-1]))
    heavy = {"aiohttp", "openai", "httpx", "torch", "vllm", "llama_cpp", "langchain_core"}
    assert not {m.split(".")[0] for m in modules} & heavy
    assert "llm_aug.llm.backends.openai_compat" not in modules
