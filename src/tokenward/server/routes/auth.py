"""First-party sign-in API under /api/v1: login, refresh, logout, me, password.

Token responses follow RFC 6749 §5.1 (``access_token``, ``token_type``, ``expires_in``,
``refresh_token``) with ``Cache-Control: no-store``. In cookie mode the refresh token
travels only in an HttpOnly cookie (server/cookies.py) and never in the JSON body.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tokenward.errors import BadRequest, InvalidToken
from tokenward.server import cookies
from tokenward.server.audit import RequestInfo
from tokenward.server.context import FIRST_PARTY_CLIENT, AppContext
from tokenward.server.deps import Caller, Ctx, Principal, principal, request_info
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.revocations import Revocations
from tokenward.server.services.sessions import Sessions, TokenPair

__all__ = [
    "NO_STORE",
    "PASSWORD_MAX",
    "REFRESH_TOKEN_MAX",
    "USERNAME_MAX",
    "TokenResponse",
    "router",
    "sign_in",
    "token_body",
]

router = APIRouter(prefix="/api/v1", tags=["auth"])
LOGIN_SCOPE = ""  # first-party sessions: roles, not scopes, decide what the caller may do
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


USERNAME_MAX, PASSWORD_MAX = 256, 1024  # characters, in a login body


class LoginBody(_Body):
    username: str = Field(min_length=1, max_length=USERNAME_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    cookie: bool | None = Field(
        default=None,
        description="true: refresh token in an HttpOnly cookie; default: server setting",
    )


REFRESH_TOKEN_MAX = 4096  # characters of a refresh token in a body (ours have 43)


class RefreshBody(_Body):
    refresh_token: str | None = Field(
        default=None, min_length=1, max_length=REFRESH_TOKEN_MAX, description="omit in cookie mode"
    )


class PasswordBody(_Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 token response; or, once MFA exists, the second-factor challenge."""

    access_token: str | None = None
    token_type: Literal["Bearer"] | None = None
    expires_in: int | None = Field(default=None, description="access token lifetime in seconds")
    refresh_token: str | None = Field(default=None, description="absent in cookie mode")
    mfa_required: bool | None = Field(
        default=None, description="reserved: true when a second factor must follow (no tokens then)"
    )
    mfa_token: str | None = Field(default=None, description="reserved: ticket for the MFA step")


class MeResponse(BaseModel):
    id: str
    username: str
    roles: list[str]
    session_id: str | None


def _tokens(
    response: Response, ctx: AppContext, pair: TokenPair, *, cookie: bool, login: bool
) -> TokenResponse:
    response.headers.update(NO_STORE)
    if cookie and login:
        cookies.set_session_cookies(response, ctx.settings, pair.refresh_token)
    elif cookie:
        cookies.set_refresh_cookie(response, ctx.settings, pair.refresh_token)
    return token_body(pair, cookie=cookie)


def token_body(pair: TokenPair, *, cookie: bool) -> TokenResponse:
    """RFC 6749 §5.1's JSON; in cookie mode the refresh token is not in it."""
    return TokenResponse(
        access_token=pair.access_token,
        token_type="Bearer",
        expires_in=pair.expires_in,
        refresh_token=None if cookie else pair.refresh_token,
    )


async def sign_in(ctx: AppContext, username: str, password: str, info: RequestInfo) -> TokenPair:
    """A first-party session for the password's owner (also routes/login.py's answer)."""
    return await Accounts(ctx).sign_in(
        username, password, client_id=FIRST_PARTY_CLIENT, scope=LOGIN_SCOPE, request=info
    )


@router.post("/login", response_model=TokenResponse, response_model_exclude_none=True)
async def login(body: LoginBody, request: Request, response: Response, ctx: Ctx) -> TokenResponse:
    """Password sign-in; starts a session (refresh family) for the first-party client."""
    pair = await sign_in(ctx, body.username, body.password, request_info(request))
    use_cookie = ctx.settings.cookie_mode if body.cookie is None else body.cookie
    return _tokens(response, ctx, pair, cookie=use_cookie, login=True)


@router.post("/refresh", response_model=TokenResponse, response_model_exclude_none=True)
async def refresh(
    request: Request,
    response: Response,
    ctx: Ctx,
    body: Annotated[RefreshBody | None, Body()] = None,
) -> TokenResponse:
    """Rotate the refresh token (from the body, or from the cookie with the CSRF header)."""
    info = request_info(request)
    ctx.limiter.hit("token:ip", info.ip or "-")
    token = body.refresh_token if body is not None else None
    from_cookie = token is None
    if token is None:
        token = cookies.refresh_cookie(request, ctx.settings)
        if token is None:
            raise BadRequest("refresh_token is required (in the body, or the session cookie)")
        cookies.check_csrf(request, ctx.settings)
    pair = await Sessions(ctx).refresh(
        token, client_id=FIRST_PARTY_CLIENT, scope=None, request=info
    )
    return _tokens(response, ctx, pair, cookie=from_cookie, login=False)


@router.post("/logout", status_code=204)
async def logout(request: Request, ctx: Ctx) -> Response:
    """End this session: by Bearer token (its ``sid``), or by the refresh cookie + CSRF."""
    info = request_info(request)
    response = Response(status_code=204, headers=NO_STORE)
    cookie = cookies.refresh_cookie(request, ctx.settings)
    if cookie is not None and "authorization" not in request.headers:
        cookies.check_csrf(request, ctx.settings)
        family = await Sessions(ctx).family_of(cookie, client_id=FIRST_PARTY_CLIENT)
        if family is not None:
            await Sessions(ctx).end(family, reason="logout", request=info)
    else:
        await _logout_bearer(ctx, principal(request), info)
    cookies.clear_session_cookies(response, ctx.settings)
    return response


async def _logout_bearer(ctx: AppContext, who: Principal, info: RequestInfo) -> None:
    await Revocations(ctx).deny(str(who.claims.get("jti", "")), float(who.claims["exp"]))
    family = await ctx.store.get_family(who.session_id) if who.session_id else None
    if family is not None and family.user_id == who.subject:
        await Sessions(ctx).end(family.id, reason="logout", request=info)
    else:
        await ctx.audit.emit("logout", user_id=who.subject, request=info)


@router.post("/logout-all", status_code=204)
async def logout_all(request: Request, ctx: Ctx, who: Caller) -> Response:
    """End every session of the caller and revoke every access token issued to them."""
    info = request_info(request)
    await Revocations(ctx).revoke_user_tokens(who.subject)
    await Sessions(ctx).end_all(who.subject, reason="logout_all", request=info)
    response = Response(status_code=204, headers=NO_STORE)
    cookies.clear_session_cookies(response, ctx.settings)
    return response


@router.get("/me", response_model=MeResponse)
async def me(response: Response, ctx: Ctx, who: Caller) -> MeResponse:
    user = await ctx.store.get_user(who.subject)
    if user is None or user.disabled:
        raise InvalidToken("the account is gone or disabled")
    response.headers.update(NO_STORE)
    return MeResponse(
        id=user.id, username=user.username, roles=list(user.roles), session_id=who.session_id
    )


@router.post("/password", status_code=204)
async def change_password(body: PasswordBody, request: Request, ctx: Ctx, who: Caller) -> Response:
    """Change the password. Other sessions end; every access token dies, this one included:
    the client refreshes (this session survives) to get a token of the new version."""
    await Accounts(ctx).change_password(
        who.subject,
        body.current_password,
        body.new_password,
        request=request_info(request),
        keep_session=who.session_id,
    )
    return Response(status_code=204, headers=NO_STORE)
