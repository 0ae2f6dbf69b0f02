"""Where posts may be sent, and keeping API keys out of logs, errors and files.

The posts this toolkit handles are sensitive (suicide-risk data), so an endpoint that
is not on this machine or a private network is refused unless the user opts in with
``allow_remote``, and so is an environment proxy (``HTTP_PROXY``...) that is not. API
keys are registered here when a backend is built; every log record of the ``llm_aug``
logger tree and every backend error message passes through :func:`redact`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import urllib.request
from urllib.parse import urlsplit

from llm_aug.core.errors import UserError

REDACTED = "***"
_secrets: set[str] = set()
_lock = threading.Lock()
API_KEY_HINT = "the environment (LLM_AUG_API_KEY, OPENAI_API_KEY or api_key_env)"
_MIN_SECRET_LEN = 6  # shorter "keys" (e.g. "x", "EMPTY") would redact ordinary words


class RemoteNotAllowed(UserError):
    """The base URL points outside this machine and private networks."""


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`redact` (and so logging) hides it."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` by ``***``."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites a record's message with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            clean = redact(message)
            if clean != message or record.exc_info:
                record.msg, record.args = clean, ()
            if record.exc_info and record.exc_info[1] is not None:
                # Tracebacks are formatted later from the exception: format now, redacted.
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


def install_log_filter(target: logging.Logger) -> logging.Logger:
    """Attach :class:`RedactingFilter` to ``target`` (idempotent) and return it.

    Logger filters do not apply to records propagated from child loggers, so each
    module that may log request details installs it on its own logger.
    """
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())
    return target


# What counts as this machine or a private network: a short allow-list rather than
# ipaddress's is_private, which also calls "private" the Teredo tunnel to the internet
# (2001::/32, inside its 2001::/23), documentation ranges and, before Python 3.13,
# every IPv4-mapped address (::ffff:8.8.8.8). Link-local (169.254.0.0/16, fe80::/10) is
# left out: 169.254.169.254 is the cloud metadata service, not a server of ours.
_LOCAL_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
    "0.0.0.0/32",  # "this host": a connection to it reaches loopback
    "::1/128", "::/128", "fc00::/7",
))


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` names and loopback addresses (IPv4 or IPv6)."""
    if not host:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def address_is_local(address: str) -> bool:
    """True for an IP literal on loopback or a private network (RFC 1918, IPv6 ULA); link-local is remote.

    An IPv4-mapped address (``::ffff:a.b.c.d``) is judged by its IPv4 address. Every
    other form that carries IPv4 over the internet is remote: 6to4 (``2002::/16``),
    Teredo (``2001::/32``), NAT64 (``64:ff9b::/96``), IPv4-compatible ``::a.b.c.d``.
    Raises ``ValueError`` when ``address`` is not an IP literal.
    """
    ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _LOCAL_NETWORKS)


def host_is_local(host: str) -> bool:
    """True for local IP literals (:func:`address_is_local`), ``localhost``, and names resolving only there.

    A name that does not resolve is remote: nothing can tell where it would go.
    """
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return address_is_local(name)
    except ValueError:
        pass  # a name, not an IP literal
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(address_is_local(str(info[4][0])) for info in infos)


def env_proxies(url: str) -> list[str]:
    """The environment proxies a transport may send requests for ``url`` through.

    The proxy for the URL's scheme (``HTTP_PROXY``/``HTTPS_PROXY``, both transports) and
    ``ALL_PROXY`` (the SDK's httpx). ``NO_PROXY`` removes them only when it is ``*`` or
    names the host exactly: aiohttp and httpx read its other forms (suffixes, CIDR
    blocks) differently, so a proxy that one of them might still use is kept.
    """
    parts = urlsplit(url)
    found = urllib.request.getproxies()
    host = (parts.hostname or "").lower()
    bypass = {entry.strip().lower().strip("[]") for entry in found.get("no", "").split(",")}
    if "*" in bypass or host in bypass:
        return []
    return [found[key] for key in (parts.scheme, "all") if found.get(key)]


def _check_proxies(base_url: str, host: str) -> None:
    """Refuse an environment proxy for ``base_url`` that is not itself local."""
    if is_loopback(host):
        return  # both transports connect to loopback hosts directly
    for proxy in env_proxies(base_url):
        proxy_host = urlsplit(proxy if "://" in proxy else f"http://{proxy}").hostname
        if not proxy_host or not host_is_local(proxy_host):
            shown = proxy_host or "an unreadable address"  # never the URL: it may hold a password
            raise RemoteNotAllowed(
                f"refusing to send posts to {host} through the environment's proxy {shown} "
                "(HTTP_PROXY/HTTPS_PROXY/ALL_PROXY): it is not this machine or a private network. "
                f"Add {host} to NO_PROXY, or pass --allow-remote (config: allow_remote: true) "
                "if this is intended.")


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (for messages)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=f"{REDACTED}@{parts.netloc.rpartition('@')[2]}").geturl()


def check_url_form(base_url: str) -> None:
    """Refuse a base URL that is not ``http(s)://host[:port]/path`` with a plain host.

    Credentials in the URL (``http://user:key@host``) are refused, not sent: they would
    reach manifests, batch run directories and logs; keys go in the environment. So is a
    legacy numeric host (``2130706433``, ``127.1``, ``0x7f.1``): the resolver reads it as an
    IPv4 address, the HTTP clients do not; the dotted form is named instead.
    """
    parts = urlsplit(base_url)
    shown = without_userinfo(base_url)
    if "@" in parts.netloc:
        raise UserError(f"base URL {shown!r} holds credentials (user:password@): refused, so they "
                        f"reach no log or file; give the key in {API_KEY_HINT} instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"base URL must look like http(s)://host[:port]/path, got {shown!r}")
    dotted = _legacy_ipv4(parts.hostname)
    if dotted is not None:
        raise UserError(f"base URL host {parts.hostname!r} is a numeric IPv4 shorthand; "
                        f"write it as {dotted}")


def _legacy_ipv4(host: str) -> str | None:
    """The dotted quad of a host that only inet_aton reads as IPv4 (``127.1``), else None."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None  # a proper literal
    except ValueError:
        pass
    if not host[:1].isdigit() or any(c not in "0123456789abcdefx." for c in host.lower()):
        return None  # a name: inet_aton would also read "127.1 anything" as an address
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def check_base_url(base_url: str, *, allow_remote: bool = False) -> None:
    """Refuse a malformed base URL (:func:`check_url_form`), and one outside loopback and
    private networks unless ``allow_remote``.

    For a base URL that is not loopback, the environment's proxy for it (which the
    transports would send the posts to) must pass the same test.
    """
    check_url_form(base_url)
    host = urlsplit(base_url).hostname or ""
    if allow_remote:
        return
    if not host_is_local(host):
        raise RemoteNotAllowed(
            f"refusing to send posts to {host}: it is not this machine or a private "
            "network. Pass --allow-remote (config: allow_remote: true) if this is intended."
        )
    _check_proxies(base_url, host)
