"""A Flask service protected by tokenward.

Start a tokenward server (``tokenward serve``, http://127.0.0.1:8000), then, from this
directory:

    TOKENWARD_ISSUER=http://127.0.0.1:8000 flask --app app:create_app run --port 9001
    curl -s localhost:9001/me -H "authorization: Bearer $TOKEN"

Routes: ``GET /health`` (open), ``GET /me`` (any valid token), ``GET /admin`` (role
``admin``), ``GET /items`` (scope ``items:read``), ``POST /items`` (permission ``write``:
from a ``permissions`` claim or bit 2 of the ``perm`` bitfield claim).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from tokenward import Principal, Verifier
from tokenward.sdk.flask import Tokenward, current_principal
from tokenward.sdk.guard import TokenVerifier

PERMISSION_BITS = {"read": 1, "write": 2, "admin": 4}

tokenward = Tokenward(principal_factory=Principal.factory(permission_bits=PERMISSION_BITS))


def verifier_from_env() -> Verifier:
    """Everything from the issuer URL: RFC 8414 metadata, then its JWKS."""
    issuer = os.environ.get("TOKENWARD_ISSUER", "http://127.0.0.1:8000")
    return Verifier.from_issuer(issuer, audience=os.environ.get("TOKENWARD_AUDIENCE") or issuer)


def caller() -> Principal:
    assert current_principal is not None  # inside a @tokenward.require view
    return current_principal


def create_app(verifier: TokenVerifier | None = None) -> Flask:
    app = Flask(__name__)
    tokenward.init_app(app, verifier=verifier or verifier_from_env())

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    @tokenward.require()
    def me() -> dict[str, Any]:
        who = caller()
        return {"sub": who.subject, "roles": sorted(who.roles), "scopes": sorted(who.scopes)}

    @app.get("/admin")
    @tokenward.require(roles=["admin"])
    def admin() -> dict[str, Any]:
        return {"admin": caller().subject}

    @app.get("/items")
    @tokenward.require(scopes=["items:read"])
    def items() -> list[str]:
        return ["apple", "pear"]

    @app.post("/items")
    @tokenward.require(permissions=["write"])
    def add() -> tuple[dict[str, str], int]:
        return {"created_by": caller().subject}, 201

    return app
