"""FastAPI: ``Depends(require(...))`` yields the Principal and is documented as HTTP Bearer.

    app = FastAPI()
    install(app, Verifier.from_issuer("https://auth.example", audience="https://api.example"))

    @app.get("/items")
    async def items(who: Annotated[Principal, Depends(require(scopes=["items:read"]))]): ...

``install`` keeps the Guard on ``app.state`` (no module state: two apps, two verifiers),
registers the handlers that turn refusals into the shared 401/403 (RFC 6750 §3 challenge,
RFC 9457 body) and adds the HTTP Bearer security scheme to the app's OpenAPI document,
on every operation that depends on ``require()`` or ``optional()`` (directly or through
another dependency). Routers in other modules only import ``require``.

Why the dependency is one plain ``async def`` (on the event loop: no threadpool hop) and the
scheme is written when the schema is generated, not an ``HTTPBearer`` sub-dependency or a
``SecurityBase`` subclass that documents itself: FastAPI charges a quarter of a bare
endpoint's cost for resolving any dependency, so ``HTTPBearer`` + ours would pay it twice,
and a ``SecurityBase`` instance costs a little more again (its scopes are sorted into a cache
key per request, the call goes through ``__call__``) while still needing this hook for the
scopes and for ``optional()``. bench/middleware_overhead.py measures each side by side.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from tokenward.errors import AccessDenied, InvalidToken
from tokenward.sdk.asgi import raw_authorization
from tokenward.sdk.guard import AUTH_ERRORS, Guard, TokenVerifier
from tokenward.sdk.principal import Principal, PrincipalFactory, requirement
from tokenward.sdk.starlette import state_value

__all__ = ["DESCRIPTION", "SCHEME", "install", "optional", "require"]

SCHEME = "tokenward"  # the OpenAPI security scheme's name (type http, scheme bearer)
DESCRIPTION = "An access token (RFC 9068 at+jwt)"
_MARK = "__tokenward_scopes__"  # on our dependencies: required scopes, or None if optional


def install(
    app: FastAPI,
    verifier: TokenVerifier | Guard,
    *,
    principal_factory: PrincipalFactory = Principal.from_claims,
    realm: str = "tokenward",
) -> Guard:
    """Configure ``app`` once: Guard on ``app.state.tokenward``, error handlers, OpenAPI."""
    guard = (
        verifier
        if isinstance(verifier, Guard)
        else Guard(verifier, principal_factory=principal_factory, realm=realm)
    )
    app.state.tokenward = guard
    app.add_exception_handler(InvalidToken, _refused)
    app.add_exception_handler(AccessDenied, _refused)
    app.openapi = _documented(app, app.openapi)  # type: ignore[method-assign]
    return guard


def _guard(conn: HTTPConnection) -> Guard:
    guard = state_value(conn.scope["app"].state, "tokenward")
    if not isinstance(guard, Guard):
        raise RuntimeError("call tokenward.sdk.fastapi.install(app, verifier) first")
    return guard


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AUTH_ERRORS)
    failure = _guard(request).failure(exc)
    return Response(failure.body, failure.status, headers=dict(failure.headers))


def require(
    *,
    scopes: str | Iterable[str] = (),
    roles: str | Iterable[str] = (),
    permissions: str | Iterable[str] = (),
) -> Callable[..., Awaitable[Principal]]:
    """A dependency yielding the caller, who must hold every scope, role and permission."""
    need = requirement(scopes=scopes, roles=roles, permissions=permissions)

    async def tokenward_principal(conn: HTTPConnection) -> Principal:
        guard = _guard(conn)
        return guard.authorize(guard.authenticate(raw_authorization(conn.scope)), need)

    setattr(tokenward_principal, _MARK, need.scopes)
    return tokenward_principal


def optional() -> Callable[..., Awaitable[Principal | None]]:
    """A dependency yielding the caller or None; a refused token is still a 401."""

    async def tokenward_optional_principal(conn: HTTPConnection) -> Principal | None:
        return _guard(conn).authenticate(raw_authorization(conn.scope))

    setattr(tokenward_optional_principal, _MARK, None)
    return tokenward_optional_principal


def _marks(dependant: Dependant) -> list[tuple[str, ...] | None]:
    found = [getattr(dependant.call, _MARK)] if hasattr(dependant.call, _MARK) else []
    for sub in dependant.dependencies:
        found += _marks(sub)
    return found


def _security(dependant: Dependant) -> list[dict[str, list[str]]]:
    """The operation's OpenAPI 3.1 security requirements (§4.8.30)."""
    marks = _marks(dependant)
    if not marks:
        return []
    required = [m for m in marks if m is not None]
    if not required:  # only optional(): an empty requirement object makes it optional
        return [{SCHEME: []}, {}]
    # One requirement object: every require() on the path applies (AND, not OR). For an
    # http scheme 3.1 lets the array name roles; we list the scopes the token must carry.
    return [{SCHEME: sorted({s for m in required for s in m})}]


def _documented(app: FastAPI, generate: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    """``app.openapi`` plus our scheme and, per operation, the requirements it depends on."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        scheme = {"type": "http", "scheme": "bearer", "description": DESCRIPTION}
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = scheme
        paths = schema.get("paths", {})
        for route in app.routes:
            if isinstance(route, APIRoute) and (needs := _security(route.dependant)):
                operations = paths.get(route.path_format, {})
                for method in route.methods or ():
                    if method.lower() in operations:
                        operations[method.lower()].setdefault("security", []).extend(needs)
        return schema

    return openapi
