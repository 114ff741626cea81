"""National mode: SATUSEHAT's paths on this server, so other nodes can sync to it.

The FHIR blueprint is mounted a second time at /fhir-r4/v1, where every request needs
``Authorization: Bearer <token>`` from ``POST /oauth2/v1/accesstoken`` (``http/auth.py``, which
answers as SATUSEHAT's gateway does).  Mounted only when ILP_NATIONAL_CLIENTS lists clients;
see docs/national-mode.md.
"""

from __future__ import annotations

from flask import Flask

from server.http import fhir_api

FHIR_PREFIX = "/fhir-r4/v1"
FHIR_BLUEPRINT = "fhir_r4"


def register(app: Flask) -> None:
    """Mount the FHIR API at /fhir-r4/v1 (``http/auth.py`` guards it with bearer tokens)."""
    app.register_blueprint(fhir_api.bp, url_prefix=FHIR_PREFIX, name=FHIR_BLUEPRINT)
