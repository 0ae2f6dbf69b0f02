"""The privacy guard: what counts as local, and environment proxies that would carry posts away."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

import llm_aug.llm.privacy as privacy
from llm_aug.llm.backends.openai_compat import OpenAICompatBackend
from llm_aug.llm.privacy import RemoteNotAllowed, address_is_local, check_base_url, host_is_local
from llm_aug.llm.types import ChatRequest, user_messages
from llm_server import LLMServer

KEY = "sk-proxy-canary-5e1d0c"

LOCAL = ["127.0.0.1", "127.8.9.1", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
         "0.0.0.0", "::1", "::", "fd12:3456::1", "fc00::1",
         "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.0.9"]
REMOTE = {
    "link-local IPv4 (cloud metadata)": "169.254.169.254",
    "link-local IPv4": "169.254.10.20",
    "link-local IPv6": "fe80::1",
    "link-local IPv6 with a zone": "fe80::1%eth0",
    "IPv4-mapped link-local": "::ffff:169.254.169.254",
    "public IPv4": "8.8.8.8",
    "carrier-grade NAT": "100.64.0.1",
    "documentation IPv4": "192.0.2.1",
    "benchmarking IPv4": "198.18.0.1",
    "Teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "Teredo, short": "2001::1",
    "6to4 of a public address": "2002:c000:204::1",
    "6to4 of a private address": "2002:a00:1::1",
    "NAT64 of a private address": "64:ff9b::a00:1",
    "IPv4-compatible": "::10.0.0.1",
    "IPv4-mapped public": "::ffff:8.8.8.8",
    "global unicast": "2606:4700:4700::1111",
    "documentation IPv6": "2001:db8::1",
    "deprecated site-local": "fec0::1",
    "multicast": "ff02::1",
}


def _url(address: str) -> str:
    return f"http://[{address}]:8000/v1" if ":" in address else f"http://{address}:8000/v1"


@pytest.mark.parametrize("address", LOCAL)
def test_loopback_and_private_addresses_are_local(address):
    assert address_is_local(address) and host_is_local(address)
    if "%" not in address:
        check_base_url(_url(address))


@pytest.mark.parametrize("address", list(REMOTE.values()), ids=list(REMOTE))
def test_globally_routable_and_tunnel_forms_are_remote(address):
    assert not address_is_local(address) and not host_is_local(address)
    with pytest.raises(RemoteNotAllowed, match="allow-remote"):
        check_base_url(_url(address))
    check_base_url(_url(address), allow_remote=True)


@pytest.fixture
def resolve(monkeypatch):
    """Make names resolve to given addresses (no DNS in tests)."""
    table: dict[str, list[str]] = {}

    def getaddrinfo(host, *args, **kwargs):
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "not found")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                for a in table[host]]
    monkeypatch.setattr(privacy.socket, "getaddrinfo", getaddrinfo)
    return table


def test_names_are_local_only_when_every_address_is(resolve):
    resolve.update({"gpu.lan": ["10.0.0.7", "fd00::7"], "tunnel.example": ["2001::53"],
                    "mixed.lan": ["10.0.0.7", "2002:a00:7::1"], "api.localhost": ["8.8.8.8"]})
    assert host_is_local("gpu.lan") and host_is_local("GPU.LAN.") and host_is_local("localhost")
    for name in ("tunnel.example", "mixed.lan", "api.localhost", "unresolvable.lan"):
        assert not host_is_local(name), name


@pytest.fixture
def proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


PRIVATE = "http://10.0.0.5:8000/v1"


@pytest.mark.parametrize("variable, url", [("HTTP_PROXY", PRIVATE), ("ALL_PROXY", PRIVATE),
                                           ("HTTPS_PROXY", "https://10.0.0.5/v1"),
                                           ("http_proxy", "http://[fd00::5]:8000/v1")])
@pytest.mark.parametrize("client", ["http", "sdk"])
def test_a_remote_environment_proxy_for_a_private_server_is_refused(proxy_env, variable, url, client):
    proxy_env.setenv(variable, "http://user:hunter2-secret@8.8.8.8:3128")
    with pytest.raises(RemoteNotAllowed) as refused:
        OpenAICompatBackend("m", url, client=client, api_key=KEY)
    message = str(refused.value)
    assert "proxy 8.8.8.8" in message and "NO_PROXY" in message and "--allow-remote" in message
    assert "hunter2" not in message and "\n" not in message
    OpenAICompatBackend("m", url, client=client, allow_remote=True)


@pytest.mark.parametrize("proxy", ["http://127.0.0.1:3128", "10.0.0.1:3128", "http://[fd00::1]:3128",
                                   "http://localhost:3128"])
def test_a_local_proxy_for_a_private_server_is_allowed(proxy_env, proxy):
    proxy_env.setenv("HTTP_PROXY", proxy)
    check_base_url(PRIVATE)


@pytest.mark.parametrize("no_proxy, allowed", [("10.0.0.5", True), ("example.com, 10.0.0.5", True),
                                               ("*", True), ("10.0.0.0/8", False), (".lan", False)])
def test_no_proxy_counts_only_when_both_transports_read_it_alike(proxy_env, no_proxy, allowed):
    proxy_env.setenv("HTTP_PROXY", "http://8.8.8.8:3128")
    proxy_env.setenv("NO_PROXY", no_proxy)
    if allowed:
        check_base_url(PRIVATE)
    else:
        with pytest.raises(RemoteNotAllowed):
            check_base_url(PRIVATE)


def test_a_remote_proxy_does_not_matter_for_loopback_servers(proxy_env):
    proxy_env.setenv("HTTP_PROXY", "http://8.8.8.8:3128")
    proxy_env.setenv("ALL_PROXY", "http://8.8.8.8:3128")
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
        check_base_url(url)  # both transports connect to loopback directly (tested below)


class _Listener:
    """A loopback TCP listener posing as a proxy: it records every byte it is sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(1.0)
            try:
                self.received += conn.recv(65536)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("client", ["http", "sdk"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_posts_and_key_to_a_loopback_server_never_reach_the_environment_proxy(proxy_env, client, host):
    proxy = _Listener()
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            proxy_env.setenv(name, f"http://127.0.0.1:{proxy.port}")
        with LLMServer(record=True) as server:
            url = server.url.replace("127.0.0.1", host)
            backend = OpenAICompatBackend("m", url, client=client, api_key=KEY, timeout_s=10)
            request = ChatRequest(id="a", messages=user_messages("一条敏感的帖子"))
            [[generation]] = asyncio.run(backend.generate([request]))
            asyncio.run(backend.aclose())
    finally:
        proxy.close()
    assert generation.text.startswith("echo ")
    assert server.recorded[0][0]["authorization"] == f"Bearer {KEY}"
    assert proxy.connections == 0 and proxy.received == b""
