"""``export-dataset --push-to-hub REPO``: upload a dataset folder to the Hugging Face Hub.

The folder holds suicide-risk posts, so sending it is a decision made here explicitly,
in the open and refusably, as :mod:`llm_aug.llm.privacy` does for LLM endpoints:

* it happens only when asked (``--push-to-hub``), and is logged before anything is sent
  (rows, the endpoint, the repo, private or public);
* the repo is private unless ``--public``; an existing public repo is refused without
  ``--public`` (the Hub ignores ``private`` for a repo that already exists), and an existing
  private one stays private under ``--public`` (warned, and reported as private);
* ``HF_HUB_OFFLINE=1`` refuses it, as does an endpoint URL holding credentials;
* the token (``HF_TOKEN`` or ``hf auth login``) goes only into the request headers: it
  is registered with :func:`~llm_aug.llm.privacy.register_secret`, so no log line or
  error shows it, and it is in no result or manifest.

``huggingface_hub`` honours ``HF_ENDPOINT`` (a mirror, or the tests' loopback Hub) and is
imported only here.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from llm_aug.core.errors import UserError
from llm_aug.jobs.results import JobResult
from llm_aug.llm.privacy import check_url_form, redact, register_secret, without_userinfo

log = logging.getLogger(__name__)

OFFLINE_ENV = "HF_HUB_OFFLINE"
TOKEN_HINT = "set HF_TOKEN or run `hf auth login`"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*")
_TRUE = {"1", "true", "yes", "on"}


class PushResult(JobResult):
    """Where :func:`push_dataset` put the folder (no token: it never leaves the request headers)."""

    repo: str = Field(description="owner/name of the dataset repo")
    url: str = Field(description="the repo's page")
    private: bool
    endpoint: str = Field(description="the Hub it went to (HF_ENDPOINT, else huggingface.co)")
    files: list[str] = Field(description="files uploaded, relative to the folder")
    commit: str | None = Field(None, description="the commit's URL on the Hub")


def check_push(repo: str) -> None:
    """Refuse before anything is read or sent: offline mode, a malformed repo id."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE:
        raise UserError(f"--push-to-hub: {OFFLINE_ENV} is set, so nothing is sent to the Hub; "
                        f"unset it to push (the dataset folder is written either way)")
    if not _REPO_ID.fullmatch(repo):
        raise UserError(f"--push-to-hub {repo!r}: give the repo as OWNER/NAME (e.g. my-lab/sos-aug)")


def _hub_api(api: Any | None) -> Any:
    if api is not None:
        return api
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError("--push-to-hub needs huggingface_hub: pip install huggingface-hub") from None
    # HF_ENDPOINT read now: huggingface_hub reads it once, at its import.
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)


def _token(api: Any) -> str:
    token = getattr(api, "token", None)
    if not token:
        from huggingface_hub import get_token

        token = get_token()
    if not token:
        raise UserError(f"--push-to-hub: no Hugging Face token; {TOKEN_HINT}")
    register_secret(token)
    return token


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _visibility(api: Any, repo: str, token: str, public: bool) -> bool:
    """Whether the repo is private now. The Hub keeps an existing repo's visibility: refuse to fill
    a public one unasked; a private one asked to be public stays private (said, and reported so)."""
    info = api.repo_info(repo, repo_type="dataset", token=token)
    private = bool(getattr(info, "private", not public))
    if not public and not private:
        raise UserError(f"--push-to-hub {repo}: the repo exists and is public; pass --public to push "
                        "the posts there, or choose a new repo (it is created private)")
    if public and private:
        log.warning("--push-to-hub %s: the repo exists and is private; it stays private (--public only "
                    "applies to a new repo; change its visibility on the Hub)", repo)
    return private


def push_dataset(folder: str | Path, repo: str, *, public: bool = False, rows: int | None = None,
                 api: Any | None = None) -> PushResult:
    """Upload ``folder`` (an export-dataset folder) to the dataset repo ``repo``, private unless ``public``.

    ``api``: an ``HfApi``-like object (default ``huggingface_hub.HfApi()``).
    """
    folder = Path(folder)
    check_push(repo)
    api = _hub_api(api)
    endpoint = str(getattr(api, "endpoint", "") or "https://huggingface.co").rstrip("/")
    check_url_form(endpoint)
    token = _token(api)
    files = _files(folder)
    visibility = "public" if public else "private"
    log.warning("export-dataset: sending %s (%s) to %s as the %s dataset %s (asked for with --push-to-hub)",
                f"{rows} rows" if rows is not None else "the dataset", ", ".join(files),
                without_userinfo(endpoint), visibility, repo)
    try:
        url = api.create_repo(repo, repo_type="dataset", private=not public, exist_ok=True, token=token)
        private = _visibility(api, repo, token, public)
        commit = api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=str(folder), token=token,
                                   commit_message=f"llm-aug export-dataset ({rows} rows)" if rows else None)
    except UserError:
        raise
    except Exception as exc:  # huggingface_hub's HTTP, auth and validation errors
        reason = redact(" ".join(str(exc).split()))[:400]
        raise UserError(f"--push-to-hub {repo}: the Hub refused or could not be reached "
                        f"({type(exc).__name__}: {reason})") from None
    log.info("pushed %s to %s (%s)", folder, url, "private" if private else "public")
    return PushResult(repo=repo, url=str(url), private=private, endpoint=without_userinfo(endpoint),
                      files=files, commit=getattr(commit, "commit_url", None) or str(commit))
