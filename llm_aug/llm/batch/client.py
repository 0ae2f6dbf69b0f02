"""A small client of the OpenAI Files and Batches endpoints, for batch mode.

``POST {base_url}/files`` (multipart, ``purpose=batch``), ``POST {base_url}/batches``,
``GET {base_url}/batches/{id}`` and ``GET {base_url}/files/{id}/content``, sent through the
same :class:`~llm_aug.llm.transports.Transport` as live calls (``make_transport("http",
...)``: its proxy handling, TLS, no redirects). The base URL passes the same privacy check
as live calls; the key goes only into the ``Authorization`` header, and error messages
are redacted. HTTP errors are mapped by :mod:`llm_aug.llm.http_errors` (the typed error
is the ``__cause__`` of the one-line :class:`UserError`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from llm_aug.core.errors import UserError
from llm_aug.llm.batch.manifest import ENDPOINT, BatchCycle, BatchManifest, save_manifest
from llm_aug.llm.batch.mode import BatchMode
from llm_aug.llm.http_errors import error_from_status
from llm_aug.llm.privacy import (
    check_base_url,
    install_log_filter,
    redact,
    register_secret,
    without_userinfo,
)
from llm_aug.llm.transports import FormField, HTTPRequest, HTTPResponse, make_transport
from llm_aug.llm.types import BackendError, Redirected

logger = install_log_filter(logging.getLogger(__name__))


class BatchClient:
    """Files and Batches calls against one OpenAI-compatible base URL (``.../v1``).

    One plain transport, not a router: an upload and the batch made from it must reach
    the same server.
    """

    def __init__(self, base_url: str, api_key: SecretStr | None, *, allow_remote: bool = False,
                 timeout_s: float = 300.0) -> None:
        check_base_url(base_url, allow_remote=allow_remote)
        self.base_url = base_url.rstrip("/")
        secret = api_key.get_secret_value() if api_key else None
        register_secret(secret)
        self._transport = make_transport("http", self.base_url, headers={"User-Agent": "llm-aug"},
                                         timeout_s=timeout_s, max_connections=4,
                                         api_key=api_key if secret else None)

    async def __aenter__(self) -> "BatchClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._transport.aclose()

    async def _call(self, req: HTTPRequest) -> bytes:
        url = f"{self.base_url}{req.path}"
        try:
            response = await self._transport.request(req)
        except BackendError as exc:  # no response: refused, DNS, TLS, timeout, dropped
            raise UserError(redact(f"{req.method} {url}: {type(exc).__name__}: {exc}")) from exc
        if response.status >= 300:
            error = error_from_status(response.status, response.headers, response.body)
            raise UserError(_says(req.method, url, error, response)) from error
        return response.body

    async def _json(self, req: HTTPRequest) -> dict[str, Any]:
        body = await self._call(req)
        where = f"{req.method} {self.base_url}{req.path}"
        try:
            data = json.loads(body)
        except ValueError:
            raise UserError(f"{where}: the answer is not JSON") from None
        if not isinstance(data, dict) or "id" not in data:
            raise UserError(f"{where}: the answer has no id")
        return data

    async def upload(self, path: Path) -> str:
        """Upload a request file with ``purpose=batch``; its file id."""
        form = (FormField("purpose", "batch"),
                FormField("file", path.read_bytes(), filename=path.name,
                          content_type="application/jsonl"))
        return str((await self._json(HTTPRequest("POST", "/files", multipart=form)))["id"])

    async def create_batch(self, file_id: str) -> dict[str, Any]:
        """Create a batch over an uploaded file; the batch object."""
        body = json.dumps({"input_file_id": file_id, "endpoint": ENDPOINT,
                           "completion_window": "24h"}).encode()
        return await self._json(HTTPRequest("POST", "/batches", body=body))

    async def get_batch(self, batch_id: str) -> dict[str, Any]:
        """The batch object (``status``, ``request_counts``, ``output_file_id``, ...)."""
        return await self._json(HTTPRequest("GET", f"/batches/{batch_id}"))

    async def content(self, file_id: str) -> bytes:
        """The bytes of a file (a batch's output or error file)."""
        # Any type: the transport asks for JSON by default, and this is JSONL (or binary).
        return await self._call(HTTPRequest("GET", f"/files/{file_id}/content",
                                            headers={"Accept": "*/*"}))


def _says(method: str, url: str, error: BackendError, response: HTTPResponse) -> str:
    """The one-line message for an error status (its wording predates the typed errors)."""
    if isinstance(error, Redirected):
        target = without_userinfo(response.headers.get("location", "")) or "nowhere"
        return redact(f"{method} {url}: HTTP {response.status} redirect to {target!r}, "
                      "not followed; give the server's own URL")
    text = response.body[:300].decode("utf-8", "replace").strip()
    return redact(f"{method} {url}: HTTP {response.status}: {text}")


def client_for(manifest: BatchManifest, *, api_key: SecretStr | None,
               allow_remote: bool) -> BatchClient:
    """A client for the manifest's server; UserError when the run has no base URL."""
    if not manifest.base_url:
        raise UserError("this batch run has no server URL (was it made with --backend openai?)")
    return BatchClient(manifest.base_url, api_key, allow_remote=allow_remote)


async def submit_cycle(manifest: BatchManifest, cycle: BatchCycle, mode: BatchMode) -> None:
    """Upload the cycle's files and create their batches; ids saved after every step.

    Files that already have a batch are skipped, so a submit that failed halfway (or an
    earlier ``--batch export``) is completed by submitting again.
    """
    async with client_for(manifest, api_key=mode.api_key, allow_remote=mode.allow_remote) as client:
        for entry in cycle.files:
            if entry.batch_id is not None:
                continue
            if entry.file_id is None:
                entry.file_id = await client.upload(mode.run_dir / entry.name)
                save_manifest(mode.run_dir, manifest)
            batch = await client.create_batch(entry.file_id)
            entry.batch_id, entry.status = str(batch["id"]), batch.get("status")
            save_manifest(mode.run_dir, manifest)
            logger.info("submitted %s as batch %s", entry.name, entry.batch_id)


async def refresh_cycle(client: BatchClient, cycle: BatchCycle) -> None:
    """Update each submitted, uncollected file of ``cycle`` from its batch object."""
    for entry in cycle.files:
        if entry.batch_id is None or entry.collected:
            continue
        batch = await client.get_batch(entry.batch_id)
        entry.status = batch.get("status")
        counts = batch.get("request_counts") or {}
        entry.request_counts = {k: int(v) for k, v in counts.items() if isinstance(v, int)}
        entry.output_file_id = batch.get("output_file_id")
        entry.error_file_id = batch.get("error_file_id")
        if entry.status in ("failed", "expired", "cancelled"):
            # A batch that failed validation has no output; its reasons are only here.
            errors = (batch.get("errors") or {}).get("data") or []
            reasons = "; ".join(str(e.get("message", e)) for e in errors[:3] if isinstance(e, dict))
            logger.warning("batch %s (%s) is %s%s", entry.batch_id, entry.name, entry.status,
                           f": {redact(reasons)}" if reasons else "")
