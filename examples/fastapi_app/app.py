"""A FastAPI service protected by tokenward.

Start a tokenward server (``tokenward serve``, which listens on http://127.0.0.1:8000),
then, from this directory:

    TOKENWARD_ISSUER=http://127.0.0.1:8000 uvicorn --factory app:create_app --port 9000

    TOKEN=$(curl -s localhost:8000/api/v1/login -H 'content-type: application/json' \
            -d '{"username": "admin", "password": "..."}' | jq -r .access_token)
    curl -s localhost:9000/me -H "authorization: Bearer $TOKEN"

Routes: ``GET /health`` (open), ``GET /me`` (any valid token), ``GET /admin`` (role
``admin``), ``GET /items`` (scope ``items:read``), ``POST /items`` (permission ``write``:
from a ``permissions`` claim or bit 2 of the ``perm`` bitfield claim).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from tokenward import Principal, Verifier
from tokenward.sdk.fastapi import install, require
from tokenward.sdk.guard import TokenVerifier

PERMISSION_BITS = {"read": 1, "write": 2, "admin": 4}

# Each requirement once; Annotated keeps the handlers' signatures short.
Caller = Annotated[Principal, Depends(require())]
Admin = Annotated[Principal, Depends(require(roles=["admin"]))]
Reader = Annotated[Principal, Depends(require(scopes=["items:read"]))]
Writer = Annotated[Principal, Depends(require(permissions=["write"]))]


def verifier_from_env() -> Verifier:
    """Everything from the issuer URL: RFC 8414 metadata, then its JWKS."""
    issuer = os.environ.get("TOKENWARD_ISSUER", "http://127.0.0.1:8000")
    return Verifier.from_issuer(issuer, audience=os.environ.get("TOKENWARD_AUDIENCE") or issuer)


def describe(who: Principal) -> dict[str, Any]:
    return {"sub": who.subject, "roles": sorted(who.roles), "scopes": sorted(who.scopes)}


def create_app(verifier: TokenVerifier | None = None) -> FastAPI:
    app = FastAPI(title="tokenward FastAPI example")
    factory = Principal.factory(permission_bits=PERMISSION_BITS)
    install(app, verifier or verifier_from_env(), principal_factory=factory)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    async def me(who: Caller) -> dict[str, Any]:
        return describe(who)

    @app.get("/admin")
    async def admin(who: Admin) -> dict[str, Any]:
        return {"admin": who.subject}

    @app.get("/items")
    async def items(who: Reader) -> list[str]:
        return ["apple", "pear"]

    @app.post("/items", status_code=201)
    async def add(who: Writer) -> dict[str, str]:
        return {"created_by": who.subject}

    return app
