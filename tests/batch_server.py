"""A loopback OpenAI Files + Batches server for batch-mode tests (aiohttp.web, own thread).

Implements ``POST /v1/files`` (multipart, purpose=batch), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}`` and, for live retries of failed lines,
``POST /v1/chat/completions``. Each batch line is answered with the completion
:class:`llm_server.LLMServer` would give live for the same body, so batch and live runs
can be compared. It can fail chosen lines (they go to the error file) and report a batch
``in_progress`` for its first polls.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import Any, Callable

from aiohttp import web

from llm_server import LLMServer, Reply, default_reply

FailWhen = Callable[[dict], bool]


class BatchServer:
    """Files and Batches endpoints on 127.0.0.1; use as a context manager."""

    def __init__(self, *, reply: Reply = default_reply, fail: FailWhen | None = None,
                 in_progress_polls: int = 0) -> None:
        # LLMServer's completion builder (not started): batch answers equal live ones.
        self._live = LLMServer(reply=reply)
        self.fail, self.in_progress_polls = fail, in_progress_polls
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.auth_headers: list[str] = []
        self.chat_requests = 0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL to give a client (``.../v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "BatchServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=1024 ** 3)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}/content", self._content)
        app.router.add_post("/v1/batches", self._create)
        app.router.add_get("/v1/batches/{id}", self._get)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _note_auth(self, request: web.Request) -> None:
        self.auth_headers.append(request.headers.get("Authorization", ""))

    async def _upload(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        form = await request.post()
        if form.get("purpose") != "batch":
            return web.json_response({"error": {"message": "purpose must be batch"}}, status=400)
        upload = form["file"]
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = upload.file.read()  # type: ignore[union-attr]
        return web.json_response({"id": file_id, "object": "file", "purpose": "batch",
                                  "filename": upload.filename, "bytes": len(self.files[file_id])})

    async def _content(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        data = self.files.get(request.match_info["id"])
        if data is None:
            return web.json_response({"error": {"message": "no such file"}}, status=404)
        return web.Response(body=data, content_type="application/jsonl")

    async def _chat(self, request: web.Request) -> web.Response:
        self.chat_requests += 1
        return web.json_response(self._live._completion(await request.json()))

    async def _create(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        body = await request.json()
        if (body.get("input_file_id") not in self.files or body.get("endpoint") != "/v1/chat/completions"
                or body.get("completion_window") != "24h"):
            return web.json_response({"error": {"message": "bad batch request"}}, status=400)
        batch_id = f"batch_{next(self._ids)}"
        ok, failed = self._answer(self.files[body["input_file_id"]])
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"], "completion_window": "24h",
            "status": "validating", "output_file_id": self._store(ok),
            "error_file_id": self._store(failed),
            "request_counts": {"total": len(ok) + len(failed), "completed": len(ok),
                               "failed": len(failed)}}
        self.polls[batch_id] = 0
        return web.json_response({**self.batches[batch_id], "output_file_id": None,
                                  "error_file_id": None})

    async def _get(self, request: web.Request) -> web.Response:
        self._note_auth(request)
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return web.json_response({"error": {"message": "no such batch"}}, status=404)
        self.polls[batch["id"]] += 1
        if self.polls[batch["id"]] <= self.in_progress_polls:
            return web.json_response({**batch, "status": "in_progress", "output_file_id": None,
                                      "error_file_id": None})
        return web.json_response({**batch, "status": "completed"})

    def _store(self, lines: list[str]) -> str | None:
        if not lines:
            return None
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = "".join(line + "\n" for line in lines).encode()
        return file_id

    def _answer(self, data: bytes) -> tuple[list[str], list[str]]:
        """Output lines and error lines for an input file, in the Batch API's format."""
        ok, failed = [], []
        for n, raw in enumerate(data.decode().splitlines()):
            line = json.loads(raw)
            if self.fail is not None and self.fail(line):
                failed.append(json.dumps({
                    "id": f"batch_req_{n}", "custom_id": line["custom_id"], "error": None,
                    "response": {"status_code": 500, "request_id": f"req_{n}",
                                 "body": {"error": {"message": "injected failure"}}}}))
                continue
            ok.append(json.dumps({
                "id": f"batch_req_{n}", "custom_id": line["custom_id"], "error": None,
                "response": {"status_code": 200, "request_id": f"req_{n}",
                             "body": self._live._completion(line["body"])}}, ensure_ascii=False))
        return ok, failed
