"""Versioned prompt templates: ``prompts/<family>/<name>.v<N>.jinja`` rendered to chat messages.

File format (one prompt per file, self-contained: no include/extends, so the file's
sha256 identifies the prompt exactly)::

    {# ---
    description: what the prompt does
    task: [fine, binary]          # tasks it is meant for
    output: text                  # or json
    variables:                    # every variable the body uses, with a description
      post: the post to classify
      scheme: the LabelScheme
    defaults: {m: 5}              # optional default values
    json_schema: {...}            # optional, for output: json
    --- #}
    <|system|>
    ...
    <|user|>
    ... <post>
    {{ post }}
    </post>

The body is Jinja2 with ``StrictUndefined``, ``trim_blocks`` and ``lstrip_blocks``.
A message starts at a role marker alone on its line (``<|system|>``, ``<|user|>``,
``<|assistant|>``). Every ``{{ ... }}`` output goes through ``environment.neutralise``, so data
(posts, exemplars) can never produce a role marker or a tag-like delimiter.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import jinja2
import yaml
from jinja2 import meta as jinja_meta

from llm_aug.core.errors import UserError, closest
from llm_aug.llm.types import Message
from llm_aug.prompting.bare_outputs import bare_outputs
from llm_aug.prompting.environment import environment, neutralise

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("text", "json")
_NAME_RE = re.compile(r"^(?P<family>[a-z0-9_]+)/(?P<base>[a-z0-9_]+)(?:\.v(?P<version>\d+))?$")
_FILE_RE = re.compile(r"^(?P<base>[a-z0-9_]+)\.v(?P<version>\d+)\.jinja$")
_FRONT_RE = re.compile(r"\A\s*\{#\s*---[ \t]*\n(?P<yaml>.*?)\n[ \t]*---\s*#\}", re.DOTALL)
_MARKER_RE = re.compile(r"^[ \t]*<\|(system|user|assistant)\|>[ \t]*$", re.MULTILINE)
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
# Stands in for the bound variable while the rest is rendered; neutralise leaves it as is.
_SLOT = "\x00llm-aug-slot\x00"


_ENV = environment()


@dataclass(frozen=True)
class PromptInfo:
    """A prompt file found on disk, with its front-matter summary."""

    name: str
    family: str
    base: str
    version: int
    path: Path
    description: str
    tasks: tuple[str, ...]
    output: str


def prompt_root() -> Path:
    """Directory holding the shipped prompt families (``classify``, ``generate``...)."""
    return Path(str(resources.files("llm_aug.prompts")))


def _parse_front_matter(source: str, where: str) -> dict:
    match = _FRONT_RE.match(source)
    if not match:
        raise UserError(f"{where}: missing front matter ('{{# ---' ... '--- #}}' at the top)")
    try:
        meta = yaml.safe_load(match.group("yaml")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{where}: front matter is not valid YAML ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{where}: front matter must be a mapping")
    for key in ("description", "output", "variables", "task"):
        if key not in meta:
            raise UserError(f"{where}: front matter lacks {key!r}")
    if meta["output"] not in OUTPUT_FORMATS:
        raise UserError(f"{where}: output must be one of {OUTPUT_FORMATS}, not {meta['output']!r}")
    if not isinstance(meta["variables"], dict):
        raise UserError(f"{where}: 'variables' must map each variable name to a description")
    return meta


def _info(path: Path, meta: dict) -> PromptInfo:
    m = _FILE_RE.match(path.name)
    assert m, path  # callers only pass files matching _FILE_RE
    task = meta["task"]
    tasks = tuple(task) if isinstance(task, list) else (str(task),)
    return PromptInfo(
        name=f"{path.parent.name}/{m['base']}.v{m['version']}", family=path.parent.name,
        base=m["base"], version=int(m["version"]), path=path,
        description=str(meta["description"]).strip(), tasks=tasks, output=meta["output"],
    )


def list_prompts(root: str | Path | None = None) -> list[PromptInfo]:
    """Every prompt under ``root`` (default: the shipped prompts), sorted by name and version."""
    base = Path(root) if root else prompt_root()
    found = []
    for path in base.glob("*/*.jinja"):
        if _FILE_RE.match(path.name):
            found.append(_info(path, _parse_front_matter(path.read_text("utf-8"), str(path))))
    return sorted(found, key=lambda i: (i.family, i.base, i.version))


@lru_cache(maxsize=128)
def _compile(source: str, where: str) -> tuple[jinja2.Template, frozenset[str], dict[str, int]]:
    """Compile once per distinct source; also return the variables the body uses and
    those it only outputs bare at the top level (``bare_outputs``)."""
    try:
        ast = _ENV.parse(source)
        template = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None
    used = jinja_meta.find_undeclared_variables(ast) - set(_ENV.globals)
    return template, frozenset(used), bare_outputs(ast)


def _split_messages(text: str, name: str) -> list[Message]:
    """Cut rendered text at role markers into messages (content stripped)."""
    parts = _MARKER_RE.split(text)
    if len(parts) == 1:
        raise UserError(f"prompt {name!r}: no role markers (<|system|>, <|user|>, <|assistant|>)")
    if parts[0].strip():
        raise UserError(f"prompt {name!r}: text before the first role marker: {parts[0].strip()[:40]!r}")
    messages = [Message(role=role, content=body.strip()) for role, body in zip(parts[1::2], parts[2::2])]
    empty = [m.role for m in messages if not m.content]
    if empty:
        raise UserError(f"prompt {name!r}: empty {empty[0]} message")
    return messages


def _explain_undefined(exc: jinja2.UndefinedError, name: str) -> str:
    match = _UNDEFINED_RE.match(str(exc.message))
    if match:
        return f"prompt {name!r}: missing variable {match.group(1)!r}"
    return f"prompt {name!r}: a variable lacks a field the template needs ({exc.message})"


class Prompt:
    """A loaded template: ``render(**variables)`` gives the chat messages."""

    def __init__(self, info: PromptInfo, source: str, meta: dict) -> None:
        self.info = info
        self.meta = meta
        self.sha256 = hashlib.sha256(source.encode("utf-8")).hexdigest()
        self._template, used, self._bare = _compile(source, str(info.path))
        undeclared = sorted(used - set(meta["variables"]))
        if undeclared:
            raise UserError(f"{info.path}: variables used but not declared in front matter: "
                            f"{', '.join(undeclared)}")
        unused = sorted(set(meta["variables"]) - used)
        if unused:
            logger.warning("%s: declared variables not used: %s", info.path, ", ".join(unused))

    @property
    def name(self) -> str:
        """Full name, e.g. ``classify/scene_levels.v1``."""
        return self.info.name

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def output(self) -> str:
        """``text`` or ``json``: what the prompt asks the model to answer."""
        return self.info.output

    @property
    def variables(self) -> dict[str, str]:
        """Declared variables and their descriptions."""
        return dict(self.meta["variables"])

    @property
    def defaults(self) -> dict[str, Any]:
        return dict(self.meta.get("defaults") or {})

    def render(self, **variables: Any) -> list[Message]:
        """Render to messages; extra variables are ignored, missing ones raise ``UserError``.

        ``[m.model_dump() for m in prompt.render(...)]`` gives plain role/content dicts.
        """
        return _split_messages(self._render_text(variables), self.name)

    def bind(self, name: str, **fixed: Any) -> Callable[[Any], list[Message]]:
        """``render`` with every variable but ``name`` fixed: ``bind("post", scheme=s)(text)``.

        When the template outputs ``name`` only bare at the top level (``{{ post }}``, as
        the shipped classify prompts do), the rest is rendered once, on the first call,
        and each call joins those pieces around ``neutralise(value)``: the text ``render``
        gives, without rendering the level list again for every post. ``fixed`` values
        are read once, so they must not change between calls.
        """
        pieces: list[str] | None = None

        def render(value: Any) -> list[Message]:
            nonlocal pieces
            if pieces is None:
                pieces = self._pieces(name, fixed)
            if not pieces:
                return self.render(**fixed, **{name: value})
            return _split_messages(neutralise(value).join(pieces), self.name)
        return render

    def _pieces(self, name: str, fixed: dict[str, Any]) -> list[str]:
        """The text around each ``{{ name }}`` with ``fixed`` rendered; [] when it cannot be cut."""
        if name not in self._bare:
            return []
        pieces = self._render_text({**fixed, name: _SLOT}).split(_SLOT)
        return pieces if len(pieces) == self._bare[name] + 1 else []

    def _render_text(self, variables: dict[str, Any]) -> str:
        values = {**self.defaults, **variables}
        missing = [v for v in self.meta["variables"] if v not in values]
        if missing:
            raise UserError(f"prompt {self.name!r}: missing variable(s) {', '.join(map(repr, missing))}; "
                            f"it needs: {', '.join(self.meta['variables'])}")
        ignored = sorted(set(variables) - set(self.meta["variables"]))
        if ignored:
            logger.debug("prompt %s ignores variables %s", self.name, ignored)
        try:
            return self._template.render(**{k: values[k] for k in self.meta["variables"]})
        except jinja2.UndefinedError as exc:
            raise UserError(_explain_undefined(exc, self.name)) from None

    def json_schema(self, scheme: Any = None) -> dict | None:
        """The front matter's JSON schema, with ``label`` restricted to ``scheme``'s labels."""
        schema = self.meta.get("json_schema")
        if schema is None:
            return None
        schema = yaml.safe_load(yaml.safe_dump(schema))  # deep copy: callers may mutate it
        label = schema.get("properties", {}).get("label")
        if scheme is not None and isinstance(label, dict):
            label["enum"] = list(scheme.labels)
        return schema

    def __repr__(self) -> str:
        return f"Prompt({self.name!r}, sha256={self.sha256[:12]})"


def _resolve(name: str, root: Path) -> Path:
    match = _NAME_RE.match(name)
    if not match:
        raise UserError(f"bad prompt name {name!r}: use 'family/name' or 'family/name.vN' "
                        "(e.g. classify/scene_levels.v1), or a path to a .jinja file")
    family, base, version = match["family"], match["base"], match["version"]
    if version is not None:
        path = root / family / f"{base}.v{int(version)}.jinja"
        if path.is_file():
            return path
    else:
        versions = [i for i in list_prompts(root) if i.family == family and i.base == base]
        if versions:
            return max(versions, key=lambda i: i.version).path
    prompts = list_prompts(root)
    names = [i.name for i in prompts]
    raise UserError(f"unknown prompt {name!r}{_closest_prompt(family, base, prompts)}; "
                    f"available: {', '.join(names) or 'none'}")


def _closest_prompt(family: str, base: str, prompts: list[PromptInfo]) -> str:
    """``did you mean`` for a mistyped prompt: family and name compared apart (the family
    prefix they share would make every name of a family look close)."""
    families = sorted({i.family for i in prompts})
    if family not in families:
        match = closest(family, families)
        return f"; did you mean {f'{match}/{base}'!r}?" if match else ""
    match = closest(base, sorted({i.base for i in prompts if i.family == family}))
    return f"; did you mean {f'{family}/{match}'!r}?" if match else ""


def load_prompt(name: str, root: str | Path | None = None) -> Prompt:
    """Load ``family/name.vN`` (or ``family/name`` = latest version, or a ``.jinja`` path)."""
    if name.endswith(".jinja"):
        path = Path(name)
        if not path.is_file():
            raise UserError(f"prompt file not found: {name}")
        if not _FILE_RE.match(path.name):
            raise UserError(f"{name}: prompt files are named <name>.v<N>.jinja (lowercase, digits, _)")
    else:
        path = _resolve(name, Path(root) if root else prompt_root())
    source = path.read_text("utf-8")
    meta = _parse_front_matter(source, str(path))
    return Prompt(_info(path, meta), source, meta)
