"""ILP Gateway: a FHIR R4 server for Indonesia's Integrasi Layanan Primer.

``create_app`` is the only way to build the application: tests pass their own
Settings; ``wsgi.py`` passes none and the environment is read once.
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from server.config import Settings
from server.http import (
    admin,
    auth,
    dashboard,
    error_handlers,
    fhir_api,
    limits,
    national,
    security_headers,
)
from server.services.clients import ClientDirectory
from server.services.context import ServiceContext
from server.storage.db import create_db_engine

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask application for ``settings`` (default: from ILP_* variables)."""
    settings = settings or Settings.from_env(os.environ)
    logging.basicConfig(level=settings.log_level.upper())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    context = ServiceContext(settings, create_db_engine(settings))
    if context.validation.on_write:
        context.validation.require_definitions()  # fail at start, not on the first write
    app.extensions["ilp"] = context
    if not settings.auth:
        logger.warning("ILP_AUTH is off: requests are not authenticated (docs/security.md)")
    directory = ClientDirectory(context.engine, settings.client_secrets)
    auth.register(app, auth.Authority(directory, settings))
    app.register_blueprint(fhir_api.bp)
    app.register_blueprint(admin.bp)
    dashboard.register(app)
    if settings.client_secrets:  # national mode: docs/national-mode.md
        national.register(app)
    security_headers.register(app)
    limits.register(app, settings)
    error_handlers.register(app)
    return app
