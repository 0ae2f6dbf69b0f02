"""``export-dataset --push-to-hub``: a loopback Hugging Face Hub (HF_ENDPOINT) receives the
folder through the real huggingface_hub client: private by default, the token only in the
Authorization header, refused offline, without a token, and into an existing public repo."""

from __future__ import annotations

import base64
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from augment_run import make_run
from clirun import invoke
from llm_aug.cli import app
from llm_aug.core.errors import UserError
from llm_aug.jobs import export_dataset

pytest.importorskip("huggingface_hub")
TOKEN = "hf_loopbackTestToken0123456789"


class LoopbackHub:
    """The Hub routes create_repo, repo_info and upload_folder call; records what arrived."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo id -> {"private": bool, "files": {path: bytes}}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                hub.requests.append(("GET", self.path, self.headers.get("Authorization")))
                repo = self.path.split("?")[0].removeprefix("/api/datasets/")
                if repo in hub.repos:
                    return self._reply(200, {"id": repo, "private": hub.repos[repo]["private"], "sha": "0" * 40})
                self._reply(404, {"error": "Repository not found"})

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hub.requests.append(("POST", self.path, self.headers.get("Authorization")))
                self._reply(*hub.answer(self.path.split("?")[0], data, self.headers["Host"]))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, path: str, data: bytes, host: str) -> tuple[int, dict]:
        if path == "/api/repos/create":
            req = json.loads(data)
            repo = f"{req['organization']}/{req['name']}"
            assert req["type"] == "dataset"
            if repo in self.repos:  # the Hub answers 409 with the repo's URL
                return 409, {"error": "You already created this dataset repo", "url": f"http://{host}/datasets/{repo}"}
            self.repos[repo] = {"private": req.get("visibility") == "private", "files": {}}
            return 200, {"url": f"http://{host}/datasets/{repo}"}
        if path == "/api/validate-yaml":
            return 200, {}
        parts = path.split("/")  # /api/datasets/OWNER/NAME/ACTION/REVISION
        repo, action = "/".join(parts[3:5]), parts[5] if len(parts) > 5 else ""
        if action == "preupload":
            files = json.loads(data)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in files]}
        if action == "commit":
            for line in data.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    value = item["value"]
                    self.repos[repo]["files"][value["path"]] = base64.b64decode(value["content"])
            return 200, {"commitUrl": f"http://{host}/datasets/{repo}/commit/{'a' * 40}", "commitOid": "a" * 40}
        return 404, {"error": f"no route {path}"}

    def __enter__(self) -> LoopbackHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("aug"))


@pytest.fixture
def hub(monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    with LoopbackHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))
        yield server


def _folder_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_push_creates_a_private_repo_holding_the_folder_byte_for_byte(run_dir, tmp_path, hub, caplog):
    caplog.set_level(logging.INFO, logger="llm_aug")
    out = CliRunner().invoke(app, ["export-dataset", str(run_dir), "--out", str(tmp_path / "hf"),
                                   "--push-to-hub", "lab/sos-eda"])
    assert out.exit_code == 0, out.output
    repo = hub.repos["lab/sos-eda"]
    assert repo["private"] is True
    assert repo["files"] == _folder_bytes(tmp_path / "hf")
    assert set(repo["files"]) == {"README.md", "data/train-00000-of-00001.parquet"}
    assert "(private)" in out.output and f"{hub.url}/datasets/lab/sos-eda" in out.output
    sent = [auth for method, _, auth in hub.requests if method == "POST"]
    assert sent and all(auth == f"Bearer {TOKEN}" for auth in sent)
    assert "sending 132 rows" in caplog.text and "private dataset lab/sos-eda" in caplog.text
    assert TOKEN not in caplog.text + out.output


def test_push_public_only_when_asked_and_never_into_a_public_repo_unasked(run_dir, tmp_path, hub):
    result = export_dataset(run_dir, tmp_path / "pub", push_to_hub="lab/open", public=True)
    assert hub.repos["lab/open"]["private"] is False and result.hub.private is False
    assert TOKEN not in result.model_dump_json()
    with pytest.raises(UserError, match="exists and is public; pass --public"):
        export_dataset(run_dir, tmp_path / "again", push_to_hub="lab/open")
    commits = [p for m, p, _ in hub.requests if p.endswith("/commit/main")]
    assert len(commits) == 1  # the refused push sent no files
    # --public into an existing private repo: the Hub keeps it private, and the result says so
    export_dataset(run_dir, tmp_path / "closed", push_to_hub="lab/closed")
    again = invoke("export-dataset", run_dir, "--out", tmp_path / "closed-again", "--push-to-hub", "lab/closed",
                   "--public")
    assert again.exit_code == 0, again.output
    assert hub.repos["lab/closed"]["private"] is True and "(private)" in again.output


def test_push_refused_offline_without_token_or_with_a_bad_repo(run_dir, tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        export_dataset(run_dir, tmp_path / "a", push_to_hub="lab/x")
    assert not (tmp_path / "a").exists()  # refused before anything was written
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(UserError, match="OWNER/NAME"):
        export_dataset(run_dir, tmp_path / "b", push_to_hub="no-owner")
    monkeypatch.delenv("HF_TOKEN")
    out = invoke("export-dataset", run_dir, "--out", tmp_path / "c", "--push-to-hub", "lab/x")
    assert isinstance(out.exception, UserError) and "no Hugging Face token" in str(out.exception)
    assert hub.requests == []
    with pytest.raises(UserError, match="--public only applies with --push-to-hub"):
        export_dataset(run_dir, tmp_path / "d", public=True)
