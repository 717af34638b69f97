"""OAuth 2.1 endpoints: token (RFC 6749 §3.2), introspection (RFC 7662), revocation (RFC 7009).

Bodies are ``application/x-www-form-urlencoded`` (RFC 6749 Appendix B), parsed strictly
here: UTF-8, bounded, no repeated parameter (§3.2); empty values count as absent (§3.1).
Every failure is an OAuthError rendered as RFC 6749 §5.2 by server/errors.py, and every
response carries ``Cache-Control: no-store`` (§5.1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tokenward.errors import OAuthError
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.deps import get_ctx, request_info
from tokenward.server.services.clients import Clients, parse_scope
from tokenward.server.services.introspection import Introspection
from tokenward.server.services.sessions import Sessions
from tokenward.store.base import Client

__all__ = ["router"]

router = APIRouter(prefix="/oauth2", tags=["oauth2"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 32 * 1024
MAX_FIELDS = 16
MAX_VALUE = 8 * 1024  # the verifier's token size cap (SECURITY.md R1)

Form = dict[str, str]
Grant = Callable[[AppContext, Client, Form, RequestInfo], Awaitable[dict[str, Any]]]


def _invalid(detail: str) -> OAuthError:
    return OAuthError("invalid_request", detail)


# -- the request body ----------------------------------------------------------------------
async def read_form(request: Request) -> Form:
    """The form parameters; anything malformed is ``invalid_request``, never a 5xx."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM_TYPE:
        raise _invalid(f"the request body must be {FORM_TYPE}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise _invalid("the request body is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except ValueError:  # bad UTF-8 (raw or percent-encoded), too many fields
        raise _invalid("the request body is not a valid form") from None
    form: Form = {}
    for name, value in pairs:
        if name in form:
            raise _invalid(f"parameter {name[:40]!r} is repeated")  # RFC 6749 §3.2
        if len(value) > MAX_VALUE:
            raise _invalid(f"parameter {name[:40]!r} is too long")
        if value:
            form[name] = value
    return form


def _required(form: Form, name: str) -> str:
    value = form.get(name)
    if value is None:
        raise _invalid(f"{name} is required")
    return value


# -- client authentication (RFC 6749 §2.3) -------------------------------------------------
def _basic_credentials(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: Basic with form-urlencoded id and secret inside the base64."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_client", "unsupported client authentication", status=401)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(ctx: AppContext, request: Request, form: Form) -> Client:
    """HTTP Basic, client_secret_post, or a public client by ``client_id`` alone."""
    header = request.headers.get("authorization")
    posted_id, posted_secret = form.get("client_id"), form.get("client_secret")
    if header is not None:
        if posted_secret is not None:  # §2.3: one authentication method per request
            raise _invalid("use only one client authentication method")
        client_id, secret = _basic_credentials(header)
        if posted_id is not None and posted_id != client_id:
            raise _invalid("client_id does not match the authenticated client")
        return await Clients(ctx).authenticate(client_id, secret)
    if posted_id is None:
        raise OAuthError("invalid_client", "client authentication required", status=401)
    return await Clients(ctx).authenticate(posted_id, posted_secret)


async def confidential_client(ctx: AppContext, request: Request, form: Form) -> Client:
    client = await authenticate_client(ctx, request, form)
    if client.secret_hash is None:
        raise OAuthError("invalid_client", "this endpoint needs a confidential client", status=401)
    return client


# -- grants (a registry: grant_type -> handler) --------------------------------------------
def _scope_param(form: Form) -> tuple[str, ...]:
    return parse_scope(form["scope"]) if "scope" in form else ()


async def client_credentials(
    ctx: AppContext, client: Client, form: Form, info: RequestInfo
) -> dict[str, Any]:
    """RFC 6749 §4.4: a token for the client itself; no refresh token (§4.4.3)."""
    if client.secret_hash is None:
        raise OAuthError("unauthorized_client", "client_credentials needs a confidential client")
    ctx.limiter.hit("token:account", f"client:{client.client_id}")  # per account: the client
    scopes = _scope_param(form) or client.scopes  # §3.3: default to everything registered
    if not set(scopes) <= set(client.scopes):
        raise OAuthError("invalid_scope", "the scope exceeds what the client is registered for")
    scope = " ".join(scopes)
    token = ctx.issuer.issue(
        client.client_id,
        ctx.settings.effective_audience,
        scope=scope or None,
        client_id=client.client_id,
    )
    await ctx.audit.emit(
        "token.issued",
        request=info,
        client_id=client.client_id,
        grant_type="client_credentials",
        scope=scope,
    )
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ctx.settings.access_ttl,
    }
    return body | ({"scope": scope} if scope else {})


async def refresh_token(
    ctx: AppContext, client: Client, form: Form, info: RequestInfo
) -> dict[str, Any]:
    """RFC 6749 §6: rotate; the token is bound to its client (SECURITY.md refresh 5)."""
    presented = _required(form, "refresh_token")
    scope = " ".join(_scope_param(form)) if "scope" in form else None
    pair = await Sessions(ctx).refresh(
        presented, client_id=client.client_id, scope=scope, request=info
    )
    return {
        "access_token": pair.access_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "scope": pair.scope,
    }


GRANTS: dict[str, Grant] = {
    "client_credentials": client_credentials,
    "refresh_token": refresh_token,
}


# -- endpoints -----------------------------------------------------------------------------
def _form_doc(required: list[str], *optional: str) -> dict[str, Any]:
    """OpenAPI for a form body (the routes parse it themselves, strictly)."""
    names = [*required, *optional, "client_id", "client_secret"]
    schema = {
        "type": "object",
        "required": required,
        "properties": {n: {"type": "string", "maxLength": MAX_VALUE} for n in names},
    }
    return {"requestBody": {"required": True, "content": {FORM_TYPE: {"schema": schema}}}}


@router.post("/token", openapi_extra=_form_doc(["grant_type"], "refresh_token", "scope"))
async def token(request: Request) -> JSONResponse:
    ctx, info = get_ctx(request), request_info(request)
    ctx.limiter.hit("token:ip", info.ip or "-")
    form = await read_form(request)
    grant_type = _required(form, "grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise OAuthError("unsupported_grant_type", "this grant type is not supported")
    client = await authenticate_client(ctx, request, form)
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"the client may not use {grant_type}")
    return JSONResponse(await grant(ctx, client, form, info), headers=NO_STORE)


@router.post("/introspect", openapi_extra=_form_doc(["token"], "token_type_hint"))
async def introspect(request: Request) -> JSONResponse:
    """RFC 7662 §2: only confidential clients (resource servers) may ask."""
    ctx = get_ctx(request)
    form = await read_form(request)
    caller = await confidential_client(ctx, request, form)
    result = await Introspection(ctx).introspect(
        _required(form, "token"), hint=form.get("token_type_hint"), caller=caller
    )
    return JSONResponse(result, headers=NO_STORE)


@router.post("/revoke", openapi_extra=_form_doc(["token"], "token_type_hint"))
async def revoke(request: Request) -> Response:
    """RFC 7009 §2: 200 whether or not the token was known or still valid."""
    ctx, info = get_ctx(request), request_info(request)
    form = await read_form(request)
    caller = await authenticate_client(ctx, request, form)
    await Introspection(ctx).revoke(
        _required(form, "token"), hint=form.get("token_type_hint"), caller=caller, request=info
    )
    return Response(status_code=200, headers=NO_STORE)
