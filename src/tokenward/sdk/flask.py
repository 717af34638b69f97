"""Flask: the ``Tokenward`` extension, ``@tokenward.require(...)`` and ``current_principal``.

    tokenward = Tokenward(verifier=Verifier.from_issuer(ISSUER, audience=AUDIENCE))
    tokenward.init_app(app)            # or Tokenward(app, verifier=...)

    @app.get("/items")
    @tokenward.require(scopes=["items:read"])
    def items():
        return {"owner": current_principal.subject}

The Guard lives in ``app.extensions["tokenward"]`` (one extension object can serve several
apps, each with its own verifier); the caller in ``flask.g`` for the request. Refusals are
the shared 401/403 (RFC 6750 §3 challenge, RFC 9457 body). Async views work too: the view
is called through ``app.ensure_sync``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request
from werkzeug.local import LocalProxy

from tokenward.sdk.guard import AUTH_ERRORS, Failure, Guard, TokenVerifier
from tokenward.sdk.principal import ANY, Principal, PrincipalFactory, Requirement, requirement

__all__ = ["Tokenward", "current_principal"]

F = TypeVar("F", bound=Callable[..., Any])
EXTENSION = "tokenward"

# The caller of the current request: a Principal inside a protected view, else None.
current_principal = cast("Principal | None", LocalProxy(lambda: g.get("tokenward_principal")))


def _response(failure: Failure) -> Response:
    return Response(failure.body, failure.status, headers=list(failure.headers))


def _guard() -> Guard:
    guard = current_app.extensions.get(EXTENSION)
    if not isinstance(guard, Guard):
        raise RuntimeError("Tokenward is not initialised on this app: call init_app(app)")
    return guard


class Tokenward:
    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: TokenVerifier | Guard | None = None,
        principal_factory: PrincipalFactory = Principal.from_claims,
        realm: str = "tokenward",
    ) -> None:
        self._verifier, self._factory, self._realm = verifier, principal_factory, realm
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, *, verifier: TokenVerifier | Guard | None = None) -> Guard:
        source = verifier or self._verifier
        if source is None:
            raise TypeError("Tokenward needs a verifier (Tokenward(verifier=...) or init_app)")
        guard = (
            source
            if isinstance(source, Guard)
            else Guard(source, principal_factory=self._factory, realm=self._realm)
        )
        app.extensions[EXTENSION] = guard
        return guard

    def require(
        self,
        *,
        scopes: str | Iterable[str] = (),
        roles: str | Iterable[str] = (),
        permissions: str | Iterable[str] = (),
    ) -> Callable[[F], F]:
        """The view needs a valid token with every scope, role and permission named."""
        return _protect(requirement(scopes=scopes, roles=roles, permissions=permissions))

    def optional(self, view: F) -> F:
        """The view runs for anonymous callers too (current_principal is None then)."""
        return _protect(ANY, anonymous=True)(view)


def _protect(need: Requirement, *, anonymous: bool = False) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            guard = _guard()
            try:
                who = guard.authenticate(request.headers.get("Authorization"))
                g.tokenward_principal = who if anonymous else guard.authorize(who, need)
            except AUTH_ERRORS as exc:
                return _response(guard.failure(exc))
            return current_app.ensure_sync(view)(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
