"""FastAPI dependencies: the context, who is calling (RFC 6750 Bearer), from where."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from tokenward.errors import AccessDenied, InvalidToken
from tokenward.sdk.starlette import state_value
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext

__all__ = [
    "Caller",
    "Ctx",
    "Info",
    "Principal",
    "get_ctx",
    "principal",
    "request_info",
    "require_role",
]


@dataclass(frozen=True)
class Principal:
    """The verified caller: RFC 9068 claims plus what we derive from them."""

    subject: str
    claims: dict[str, Any] = field(repr=False)
    roles: frozenset[str] = frozenset()
    session_id: str | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope", "")).split())


def get_ctx(request: Request) -> AppContext:
    # state_value: no AttributeError raised and caught per request; absent, the plain
    # attribute read raises as before
    ctx: AppContext = state_value(request.app.state, "ctx") or request.app.state.ctx
    return ctx


def request_info(request: Request) -> RequestInfo:
    ctx = get_ctx(request)
    ip = request.client.host if request.client else ""
    if ctx.settings.trust_proxy_headers:
        forwarded = request.headers.get("x-forwarded-for", "")
        ip = forwarded.split(",")[0].strip() or ip
    return RequestInfo(ip=ip[:64], user_agent=request.headers.get("user-agent", "")[:512])


def bearer_token(request: Request) -> str:
    """RFC 6750 §2.1: ``Authorization: Bearer <token>``.

    §3.1: a request without credentials, or with another scheme ("an unsupported
    authentication method"), gets a challenge without an error code, as in the SDK.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        raise InvalidToken("authentication required", code="missing_token")
    if not token.strip():
        raise InvalidToken("expected a Bearer token")
    return token.strip()


def principal(request: Request) -> Principal:
    ctx = get_ctx(request)
    try:
        claims = ctx.verifier.verify(bearer_token(request))
    except InvalidToken as exc:
        ctx.metrics.verifications.labels(result=exc.code).inc()
        raise
    ctx.metrics.verifications.labels(result="ok").inc()
    roles = claims.get("roles")
    return Principal(
        subject=claims["sub"],
        claims=claims,
        roles=frozenset(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else frozenset(),
        session_id=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
    )


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in its thread
# pool, a hand-off to a worker thread and back on every request for a dict lookup.
async def _ctx_dependency(request: Request) -> AppContext:
    return get_ctx(request)


async def _info_dependency(request: Request) -> RequestInfo:
    return request_info(request)


async def _caller_dependency(request: Request) -> Principal:
    return principal(request)


Ctx = Annotated[AppContext, Depends(_ctx_dependency)]
Info = Annotated[RequestInfo, Depends(_info_dependency)]
Caller = Annotated[Principal, Depends(_caller_dependency)]


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(who: Caller) -> Principal:
        if role not in who.roles:
            raise AccessDenied(f"requires role {role!r}")
        return who

    return dependency
