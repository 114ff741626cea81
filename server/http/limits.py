"""Rate limiting of every request, per client: ILP_RATE_LIMIT a minute, ILP_RATE_BURST at once.

A client is its OAuth2 client id when ``http/auth.py`` has verified a bearer token, else the
source address.  Over the limit the client gets 429 (``throttled``) with ``Retry-After``.  The
buckets live in each gunicorn worker (``services/ratelimit.py``), so the server as a whole
admits up to ILP_WORKERS times the limit.  See docs/security-hardening.md and RFC 6585 §4.
"""

from __future__ import annotations

import math

from flask import Flask, current_app, g, request

from server.config import Settings
from server.errors import TooManyRequests
from server.services.ratelimit import RateLimiter

_EXTENSION = "ilp_rate_limit"


def register(app: Flask, settings: Settings) -> None:
    """Limit every request of ``app`` (FHIR or not); nothing at all when ILP_RATE_LIMIT is 0."""
    if settings.rate_limit == 0:
        return
    app.extensions[_EXTENSION] = RateLimiter(settings.rate_limit, settings.rate_burst)
    app.before_request(_throttle)


def retry_after(wait: float) -> int:
    """Whole seconds for ``Retry-After``: rounded up, so a client that waits gets a token."""
    return max(1, math.ceil(wait))


def _throttle() -> None:
    """before_request: take a token for the client; raises TooManyRequests without one."""
    _take(_client_key())


def charge_refusal() -> None:
    """A request refused before ``_throttle`` ran (no or a bad token, ``http/auth.py``): its
    source address pays, so guessing tokens is paced like any other traffic."""
    if _EXTENSION in current_app.extensions:
        _take(f"addr:{request.remote_addr or 'unknown'}")


def _take(key: str) -> None:
    limiter: RateLimiter = current_app.extensions[_EXTENSION]
    wait = limiter.acquire(key)
    if wait > 0:
        seconds = retry_after(wait)
        raise TooManyRequests(
            f"Too many requests; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def _client_key() -> str:
    # Prefixed so that a client id spelt like an address never shares an address's bucket.
    client_id = g.get("client_id")
    if client_id:
        return f"client:{client_id}"
    return f"addr:{request.remote_addr or 'unknown'}"
