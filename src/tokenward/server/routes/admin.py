"""Admin API under /api/v1/admin (role ``admin``): users, token revocation, keys, audit.

Every action is audited with the acting admin's id (``actor_id``): in the action's own
event where this module emits it, else in an ``admin.action`` event beside the service's.
Responses never carry a password hash, a token or key material.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tokenward.errors import BadRequest, NotFound
from tokenward.server.audit import RequestInfo
from tokenward.server.context import AppContext
from tokenward.server.deps import Ctx, Info, Principal, require_role
from tokenward.server.keyring import rotate_now
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.revocations import Revocations
from tokenward.server.services.sessions import Sessions
from tokenward.store.base import AuditEvent, User

__all__ = ["router", "user_view"]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require_role("admin"))]
UserId = Annotated[str, Path(min_length=1, max_length=128)]
Role = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.:-]{0,63}$")]
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    roles: list[Role] = Field(default_factory=list, max_length=32)


def user_view(user: User) -> dict[str, Any]:
    """What an admin may see of an account: never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "locked_until": user.locked_until,
        "failed_logins": user.failed_logins,
        "token_version": user.token_version,
        "created_at": user.created_at,
        "password_changed_at": user.password_changed_at,
    }


def event_view(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "type": event.type,
        "user_id": event.user_id,
        "username": event.username,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "session_id": event.session_id,
        "data": event.data,
    }


async def _user(ctx: AppContext, user_id: str) -> User:
    user = await ctx.store.get_user(user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def _audit(
    ctx: AppContext,
    type: str,
    admin: Principal,
    info: RequestInfo,
    user: User | None = None,
    **data: Any,
) -> None:
    await ctx.audit.emit(
        type,
        user_id=user.id if user else None,
        username=user.username if user else None,
        request=info,
        actor_id=admin.subject,
        **data,
    )


async def _admin_action(
    ctx: AppContext, action: str, admin: Principal, info: RequestInfo, user: User
) -> None:
    """Records who did it. Accounts emits the event itself (``user.created`` ...) without
    knowing the actor, so the actor goes into an ``admin.action`` event naming it."""
    await _audit(ctx, "admin.action", admin, info, user, action=action)


# -- users ---------------------------------------------------------------------------------
@router.post("/users", status_code=201)
async def create_user(body: NewUser, admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    user = await Accounts(ctx).create(body.username, body.password, roles=body.roles)
    await _admin_action(ctx, "user.created", admin, info, user)
    return user_view(user)


@router.get("/users")
async def list_users(admin: Admin, ctx: Ctx) -> list[dict[str, Any]]:
    return [user_view(u) for u in await ctx.store.list_users()]


async def _set_disabled(
    ctx: AppContext, user_id: str, disabled: bool, admin: Principal, info: RequestInfo
) -> dict[str, Any]:
    if disabled and user_id == admin.subject:
        raise BadRequest("an admin cannot disable their own account")
    user = await Accounts(ctx).set_disabled(user_id, disabled, request=info)
    await _admin_action(ctx, "user.disabled" if disabled else "user.enabled", admin, info, user)
    return user_view(user)


@router.post("/users/{user_id}/disable")
async def disable_user(user_id: UserId, admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    return await _set_disabled(ctx, user_id, True, admin, info)


@router.post("/users/{user_id}/enable")
async def enable_user(user_id: UserId, admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    return await _set_disabled(ctx, user_id, False, admin, info)


@router.post("/users/{user_id}/unlock")
async def unlock_user(user_id: UserId, admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    user = await Accounts(ctx).unlock(user_id, request=info)
    await _admin_action(ctx, "user.unlocked", admin, info, user)
    return user_view(user)


# -- revocation ----------------------------------------------------------------------------
@router.post("/users/{user_id}/revoke-tokens")
async def revoke_user_tokens(user_id: UserId, admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    """Every access token of the user dies now (token version, R22); so do their sessions,
    or a stolen refresh token would simply mint new ones."""
    user = await _user(ctx, user_id)
    version = await Revocations(ctx).revoke_user_tokens(user.id)
    ended = await Sessions(ctx).end_all(user.id, reason="admin", request=info)
    await _audit(
        ctx, "tokens.revoked_user", admin, info, user, token_version=version, sessions_ended=ended
    )
    return {"user_id": user.id, "token_version": version, "sessions_ended": ended}


@router.post("/revoke-all")
async def revoke_all(admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    """Move the global epoch: every token issued before now dies, and every session ends."""
    epoch = await Revocations(ctx).revoke_all()
    sessions, ended = Sessions(ctx), 0
    for user in await ctx.store.list_users():
        if await ctx.store.list_families(user.id):  # only users with live sessions
            ended += await sessions.end_all(user.id, reason="admin", request=info)
    await _audit(ctx, "tokens.revoked_all", admin, info, epoch=epoch, sessions_ended=ended)
    return {"epoch": epoch, "sessions_ended": ended}


# -- keys ----------------------------------------------------------------------------------
@router.post("/keys/rotate")
async def rotate_keys(admin: Admin, ctx: Ctx, info: Info) -> dict[str, Any]:
    """Immediate rotation: a new key signs from now on; the previous one keeps verifying as
    retiring until the scheduled rotation retires it after the longest token lifetime."""
    previous, key = await rotate_now(ctx.keys, ctx.settings.signing_alg, ctx.clock())
    await _audit(
        ctx,
        "keys.rotated",
        admin,
        info,
        kid=key.kid,
        retiring=previous,
        changes=[f"activated {key.kid}", f"retiring {previous}"],
    )
    return {"kid": key.kid, "alg": key.alg, "retiring": previous}


# -- audit ---------------------------------------------------------------------------------
@router.get("/audit")
async def audit_events(
    admin: Admin,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[EventType | None, Query()] = None,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> list[dict[str, Any]]:
    """Newest first (the store orders by time, then insertion)."""
    events = await ctx.store.list_audit(limit=limit, type=type, user_id=user_id)
    return [event_view(e) for e in events]
