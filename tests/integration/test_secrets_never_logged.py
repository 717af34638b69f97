"""SECURITY.md "Accounts": logs and audit events never contain passwords, tokens, secrets,
cookie values or OTP codes. One full tour of the server with every logger captured at
DEBUG, then a scan of every log record and every stored audit event."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

from tokenward.server.context import AppContext
from tokenward.server.services.accounts import Accounts
from tokenward.server.services.clients import Clients

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio

WRONG = "wrong-but-secret-guess-8472"
NEW_PASSWORD = "a brand new passphrase 2026"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


async def _tour(client: httpx.AsyncClient, ctx: AppContext) -> list[str]:
    """Drive every secret-bearing path once; return every secret value seen on the wire."""
    await Accounts(ctx).create("alice", PASSWORD, roles=["admin"])
    _, client_secret = await Clients(ctx).create("svc", "svc", ["read"], ["client_credentials"])
    seen = [PASSWORD, WRONG, NEW_PASSWORD, client_secret]
    await client.post("/api/v1/login", json={"username": "alice", "password": WRONG})
    await client.post("/api/v1/login", json={"username": "nobody", "password": WRONG})
    login = (
        await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    ).json()
    seen += [login["access_token"], login["refresh_token"]]
    cookie_login = await client.post(
        "/api/v1/login", json={"username": "alice", "password": PASSWORD, "cookie": True}
    )
    seen += [c.value for c in cookie_login.cookies.jar if c.value]
    rotated = (
        await client.post("/api/v1/refresh", json={"refresh_token": login["refresh_token"]})
    ).json()
    seen += [rotated["access_token"], rotated["refresh_token"]]
    await client.post("/api/v1/refresh", json={"refresh_token": login["refresh_token"]})  # reuse
    cc = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=_basic("svc", client_secret),
    )
    seen.append(cc.json()["access_token"])
    await client.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=_basic("svc", WRONG)
    )
    fresh = (
        await client.post("/api/v1/login", json={"username": "alice", "password": PASSWORD})
    ).json()
    bearer = {"Authorization": f"Bearer {fresh['access_token']}"}
    seen += [fresh["access_token"], fresh["refresh_token"]]
    await client.post(
        "/api/v1/password",
        headers=bearer,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    await client.post(
        "/api/v1/admin/users",
        headers=bearer,
        json={"username": "bob", "password": PASSWORD, "roles": []},
    )
    await client.get("/api/v1/me", headers={"Authorization": "Bearer " + WRONG})
    return seen


async def test_no_secret_in_any_log_record_or_audit_event(
    client: httpx.AsyncClient, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = await _tour(client, ctx)
    events = await ctx.store.list_audit(limit=10_000)
    logs = "\n".join(r.getMessage() + repr(r.args) + repr(r.__dict__) for r in caplog.records)
    stored = repr(events) + json.dumps([e.data for e in events], default=str)
    # The scan can see: the tour did log and audit, with the usernames in them.
    assert "alice" in logs and "alice" in stored
    assert {"login.failed", "login.succeeded", "refresh.reuse_detected", "password.changed"} <= {
        e.type for e in events
    }
    for value in secrets:
        assert len(value) >= 8
        assert value not in logs, "a secret reached a log record"
        assert value not in stored, "a secret reached the audit store"
