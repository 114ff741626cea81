"""Sending import transactions to a FHIR server over HTTP (``ilp import --url``).

A refusal that names one entry (``Bundle.entry[3]...`` in an issue's ``expression``, as this
server and HAPI write them) becomes ``BundleRefused``, so the importer can leave that row out
and send the others again; any other refusal, or no answer, is ``ImportFailed``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from http import HTTPStatus
from typing import Any

import orjson

from mappers.importing import BundleRefused, ImportFailed, Send, entry_index

FHIR_JSON = "application/fhir+json"


def sender(base_url: str, timeout: float = 120.0) -> Send:
    """A ``Send`` that POSTs each transaction to ``base_url``."""
    return lambda bundle: post_bundle(base_url, bundle, timeout)


def post_bundle(base_url: str, bundle: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """POST a transaction to the FHIR base and return the transaction-response.

    BundleRefused when a 4xx outcome names the failing entry; ImportFailed (with the
    OperationOutcome's diagnostics) for other refusals and when the server cannot be reached.
    """
    request = urllib.request.Request(
        base_url.rstrip("/"),
        data=orjson.dumps(bundle),
        method="POST",
        headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": "return=minimal"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = orjson.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        raise refusal(exc.code, exc.read()) from None
    except urllib.error.URLError as exc:
        raise ImportFailed(f"cannot reach {base_url}: {exc.reason}") from None
    except (OSError, orjson.JSONDecodeError) as exc:  # a reset or timeout mid-answer, not JSON
        raise ImportFailed(f"no transaction-response from {base_url}: {exc}") from None


def refusal(status: int, body: bytes) -> ImportFailed:
    """The error for a refused transaction, from its status and OperationOutcome body."""
    issues = _issues(body)
    message = f"{status} {_phrase(status)}: " + (
        "; ".join(str(i.get("diagnostics", i.get("code", ""))) for i in issues)
        or body.decode("utf-8", "replace")[:500]
    )
    if 400 <= status < 500:
        for issue in issues:
            for expression in issue.get("expression") or ():
                if (index := entry_index(expression)) is not None:
                    code = str(issue.get("code") or "processing")
                    return BundleRefused(message, index, code)
    return ImportFailed(message)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _issues(body: bytes) -> list[dict[str, Any]]:
    try:
        outcome = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []
