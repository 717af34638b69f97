"""A Starlette ``AuthenticationBackend`` over the shared core.

    backend = TokenwardBackend(verifier)
    app.add_middleware(AuthenticationMiddleware, backend=backend, on_error=backend.on_error)

``request.user`` is then a :class:`PrincipalUser` (``.principal`` holds the Principal) and
``request.auth.scopes`` the token's scopes, so Starlette's own ``@requires("read")`` works.
A refused Bearer token is answered by ``on_error`` with the shared 401 (RFC 6750 §3.1
challenge, RFC 9457 body) instead of Starlette's default plain-text 400. (Starlette's
``requires`` answers missing scopes with a bare 403; the pure ASGI middleware or the
FastAPI dependency give the full RFC 6750 403.)
"""

from __future__ import annotations

from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response

from tokenward.errors import InvalidToken
from tokenward.sdk.guard import Failure, Guard, TokenVerifier
from tokenward.sdk.principal import Principal, PrincipalFactory

__all__ = ["PrincipalUser", "TokenRefused", "TokenwardBackend", "state_value"]


def state_value(state: Any, name: str) -> Any:
    """``getattr(app.state, name, None)`` without its cost per request.

    Starlette's State keeps its attributes in ``_state``, and its ``__getattr__`` is reached
    only through an AttributeError raised and caught: ~4 % of a protected request
    (bench/middleware_overhead.py). Any other kind of state takes the public path.
    """
    try:
        return state._state[name]
    except (AttributeError, KeyError, TypeError):
        return getattr(state, name, None)


class PrincipalUser(BaseUser):
    """Starlette's view of a Principal."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject

    @property
    def identity(self) -> str:
        return self.principal.subject


class TokenRefused(AuthenticationError):
    """A Bearer token was refused; carries the shared 401."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.problem["detail"])
        self.failure = failure


class TokenwardBackend(AuthenticationBackend):
    def __init__(
        self,
        verifier: TokenVerifier | Guard,
        *,
        principal_factory: PrincipalFactory = Principal.from_claims,
        realm: str = "tokenward",
    ) -> None:
        self.guard = (
            verifier
            if isinstance(verifier, Guard)
            else Guard(verifier, principal_factory=principal_factory, realm=realm)
        )

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        try:
            principal = self.guard.authenticate(conn.headers.get("authorization"))
        except InvalidToken as exc:
            raise TokenRefused(self.guard.failure(exc)) from None
        if principal is None:
            return None  # Starlette makes it an UnauthenticatedUser
        return AuthCredentials(sorted(principal.scopes)), PrincipalUser(principal)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        if isinstance(exc, TokenRefused):
            failure = exc.failure
            return Response(failure.body, failure.status, headers=dict(failure.headers))
        return PlainTextResponse(str(exc), status_code=400)
