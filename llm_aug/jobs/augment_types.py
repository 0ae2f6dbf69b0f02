"""The augment job's config and result types, below both the job and what it writes.

:mod:`llm_aug.jobs.augment` runs the job and :mod:`llm_aug.jobs.augment_outputs` writes
its report and manifest; both read these types, so neither imports the other's module
for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_aug.augment.filters import FilterConfig
from llm_aug.augment.plan import Plan
from llm_aug.augment.rounds import RoundStats
from llm_aug.core.exit_codes import ExitCode
from llm_aug.jobs.results import JobResult
from llm_aug.llm import LLMConfig
from llm_aug.llm.types import DryRunEstimate

EXIT_SHORT = ExitCode.LEVEL_SHORT  # a level could not be filled (2 stays "bad input")
Method = Literal["llm", "synonym", "eda", "backtranslate"]


class AugmentConfig(BaseModel):
    """Everything ``llm-aug augment`` needs; recorded in the manifest."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    method: Method
    task: Literal["fine", "binary"]
    train: Path
    out: Path
    balance: str = "max"
    protect: list[Path] = Field(default_factory=list, description="held-out files no post may resemble")
    no_protect: bool = Field(False, description="allow running without a protect file")
    drop_near_protected: bool = Field(False, description="drop training posts that are near-copies of "
                                      "protected posts (exact copies are always dropped)")
    prompt: str = "generate/level_json.v2"
    shots: int = Field(3, ge=0, description="exemplars per generation request")
    posts_per_request: int = Field(5, ge=1)
    max_requests_per_level: int | None = Field(None, ge=1, description="default 3x the plan's")
    overgenerate: float = Field(1.5, ge=1.0)
    temperature: float = Field(0.9, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1, description="default from post length x m")
    relabel: str = Field("none", description="none, llm, or a trained classifier directory")
    tolerance: int | None = Field(None, ge=0, description="label filter tolerance")
    seed: int = 0
    filters: FilterConfig | None = Field(None, description="default: per-method defaults")
    llm: LLMConfig | None = None
    dry_run: bool = False
    corpus_format: Literal["tsv", "parquet"] = Field("tsv", description="corpus.tsv, or corpus.parquet "
                                                     "(same columns, typed) beside corpus.jsonl")


class AugmentResult(JobResult):
    """Counts and paths of a run; ``exit_code`` 0, or 3 when a level stayed short."""

    out: Path = Field(description="the output directory (corpus.tsv or corpus.parquet, report.md, manifest.json)")
    plan: Plan = Field(description="what each level needed and the requests planned for it")
    before: dict[int, int] = Field(description="posts per level in the training file")
    targets: dict[int, int] = Field(description="posts per level the balance asks for")
    after: dict[int, int] = Field(default_factory=dict, description="posts per level in the corpus written")
    shortfall: dict[int, int] = Field(default_factory=dict, description="levels left short: posts missing")
    rounds: int = Field(0, description="generation rounds run")
    n_candidates: int = Field(0, description="candidate posts made over all rounds")
    rejections: dict[str, int] = Field(default_factory=dict, description="candidates dropped, per reason")
    usage: dict[str, Any] = Field(default_factory=dict, description="LLM usage totals (n_ok, n_failed, tokens)")
    dry_run: DryRunEstimate | None = Field(None, description="a dry run's estimate of the first round")
    protected_copies: dict[str, Any] = Field(default_factory=dict, description="training posts copying protected ones")
    round_stats: list[RoundStats] = Field(default_factory=list, description="per round: candidates, accepted, time")
    corpus_file: str = Field("corpus.tsv", description="the corpus table's name in out: corpus.tsv or corpus.parquet")

    @property
    def exit_code(self) -> int:
        """The command's exit code for this result: 3 when a level stayed short, else 0."""
        return EXIT_SHORT if self.shortfall else ExitCode.OK

