"""Browser-facing security headers on every response, error responses and 404s included.

The API answers JSON to programs, so the headers only matter when a browser is pointed at
it: they stop content sniffing, framing, leaking the URL (which can hold patient search
parameters) in ``Referer``, and other origins embedding a response.  No HSTS: the server
speaks plain HTTP behind a TLS proxy, which owns that header.  See
docs/security-hardening.md and https://owasp.org/www-project-secure-headers/.
"""

from __future__ import annotations

from flask import Flask, Response

# Cross-Origin-Resource-Policy binds only no-cors loads (<script>, <img>): it keeps another
# site from pulling a response into its page or process (XSSI, Spectre) and changes nothing
# for API clients, which are programs or same-origin fetches.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors below, for browsers that predate CSP 2
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# JSON needs nothing; a page that does (a future dashboard) sets its own policy.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"


def register(app: Flask) -> None:
    """Add the headers to every response of ``app``."""
    app.after_request(add_headers)


def add_headers(response: Response) -> Response:
    """after_request: the fixed headers, and the default CSP unless the view set its own."""
    response.headers.update(HEADERS)
    if "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = DEFAULT_CSP
    return response
