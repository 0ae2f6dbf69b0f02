"""One shape for what the jobs return: typed pydantic models on a small base.

Every job of :mod:`llm_aug.jobs` that returns something returns a :class:`JobResult`:
named, documented fields read as attributes (``result.n_failed``, ``report.deltas``),
and :meth:`JobResult.to_json` (the same as ``model_dump(mode="json")``) the result as
JSON data. Where a job writes or prints a JSON report (``prompt_compare.json``,
``selection.json``, ``seeds.json``, ``evaluate --json``), that is exactly this data:
the same keys in the same order, so ``json.dumps(result.to_json(), ...)`` writes the
bytes the job always wrote. ``type(result).model_validate(result.to_json())`` gives the
result back.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class ResultPart(BaseModel):
    """A typed part of a job's result (a row, a per-prompt pair); unknown keys are refused.

    ``omit_unset`` names the keys a report holds only sometimes (compare's ``html``,
    the ordinal metrics of a 11-level evaluation): left out of the JSON while not set,
    rather than written as null, as the job wrote them before they were typed.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    omit_unset: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if self.omit_unset and isinstance(data, dict):
            for name in self.omit_unset - self.model_fields_set:
                data.pop(name, None)
        return data


class JobResult(ResultPart):
    """What a job returns; :meth:`to_json` is what the CLI prints or the job writes."""

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data (paths as strings); ``model_validate`` reads it back."""
        return self.model_dump(mode="json")
