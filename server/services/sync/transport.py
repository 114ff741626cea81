"""The seam between the sync worker and the network: one HTTP exchange at a time.

``HttpTransport`` keeps one connection per host alive (TLS handshakes to a national
platform are the expensive part); tests put a scripted fake behind the same protocol.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


class TransportError(Exception):
    """No answer: connection refused or reset, or a timeout."""


class Transport(Protocol):
    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Reply: ...


class HttpTransport:
    """http.client with a kept-alive connection per (scheme, host, port)."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> Reply:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        key = (parts.scheme, parts.netloc)
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection(key, timeout)
            try:
                connection.request(method, path or "/", body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                del self._connections[key]
                reused = attempt == 0 and not isinstance(exc, socket.timeout)
                if reused and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError)):
                    continue
                raise TransportError(f"{method} {url}: {exc or type(exc).__name__}") from exc
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                del self._connections[key]
            return Reply(response.status, data, {k.lower(): v for k, v in response.getheaders()})
        raise TransportError(f"{method} {url}: the connection kept closing")

    def _connection(self, key: tuple[str, str], timeout: float) -> http.client.HTTPConnection:
        connection = self._connections.get(key)
        if connection is None:
            scheme, netloc = key
            factory = (
                http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            )
            connection = factory(netloc, timeout=timeout)
            self._connections[key] = connection
        connection.timeout = timeout
        return connection

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
