"""OAuth clients: registration and client authentication (RFC 6749 §2).

Confidential clients get a random secret, returned once and stored only as an argon2id
hash; public clients have none (RFC 6749 §2.1). Authentication spends one argon2 verify
whether or not the client exists, so the response time does not reveal registered ids.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from tokenward.errors import BadRequest, Conflict, OAuthError
from tokenward.server.context import AppContext
from tokenward.store.base import Client

__all__ = ["CLIENT_ID", "GRANT_TYPES", "SCOPE_TOKEN", "Clients", "parse_scope"]

CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), bounded here.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
GRANT_TYPES = frozenset({"client_credentials", "refresh_token"})
MAX_SCOPES = 64
MAX_NAME = 200


def parse_scope(text: str) -> tuple[str, ...]:
    """A space-delimited scope string (RFC 6749 §3.3) -> tokens in order, no duplicates."""
    ordered = tuple(t for t in dict.fromkeys(text.split(" ")) if t)
    if len(ordered) > MAX_SCOPES or not all(SCOPE_TOKEN.fullmatch(t) for t in ordered):
        raise OAuthError("invalid_scope", "the scope is malformed")
    return ordered


def _check(
    client_id: str, name: str, scopes: Sequence[str], grants: Sequence[str], confidential: bool
) -> None:
    if not CLIENT_ID.fullmatch(client_id):
        raise BadRequest("client_id must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if len(name) > MAX_NAME:
        raise BadRequest(f"the client name is too long ({MAX_NAME} characters at most)")
    if len(scopes) > MAX_SCOPES or not all(SCOPE_TOKEN.fullmatch(s) for s in scopes):
        raise BadRequest("scopes must be RFC 6749 scope tokens (printable, no space, quote, \\)")
    unknown = sorted(set(grants) - GRANT_TYPES)
    if unknown or not grants:
        raise BadRequest(f"grant types must be among {sorted(GRANT_TYPES)}")
    if not confidential and "client_credentials" in grants:
        # RFC 6749 §4.4: the client credentials grant is for confidential clients only.
        raise BadRequest("a public client cannot use client_credentials")


class Clients:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def create(
        self,
        client_id: str,
        name: str,
        scopes: Sequence[str],
        grant_types: Sequence[str],
        confidential: bool = True,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and its plaintext secret (None for public clients).

        The secret is shown to the caller once and never stored (only its argon2id hash).
        Raises BadRequest on invalid input, Conflict if the id is taken.
        """
        scopes, grants = tuple(dict.fromkeys(scopes)), tuple(dict.fromkeys(grant_types))
        _check(client_id, name, scopes, grants, confidential)
        if await self.ctx.store.get_user(client_id) is not None:
            # RFC 9068 §6: a client's tokens carry sub = client_id, which must never name a user.
            raise Conflict("client_id is already in use as a user id")
        secret = secrets.token_urlsafe(32) if confidential else None  # 256 random bits
        hashed = await self.ctx.passwords.ahash(secret) if secret else None
        client = Client(
            client_id=client_id,
            name=name or client_id,
            secret_hash=hashed,
            scopes=scopes,
            grant_types=grants,
            created_at=self.ctx.clock(),
        )
        await self.ctx.store.add_client(client)
        await self.ctx.audit.emit(
            "client.created",
            client_id=client_id,
            confidential=confidential,
            scopes=list(scopes),
            grant_types=list(grants),
        )
        return client, secret

    async def authenticate(self, client_id: str, secret: str | None) -> Client:
        """RFC 6749 §2.3: a confidential client by its secret, a public one by its id.

        Any failure is ``invalid_client`` (401; the error handler adds the Basic challenge).
        """
        client = await self.get(client_id)
        if secret is None:
            if client is None or client.secret_hash is not None or client.disabled:
                raise _invalid_client()
            return client
        if client is None or client.secret_hash is None:
            # Same cost as a real verify; argon2 runs off the event loop (it releases the GIL).
            await self.ctx.passwords.adummy_verify(secret)
            raise _invalid_client()
        verified = await self.ctx.passwords.averify(client.secret_hash, secret)
        if not verified or client.disabled:
            raise _invalid_client()
        return client

    async def get(self, client_id: str) -> Client | None:
        if not CLIENT_ID.fullmatch(client_id):
            return None  # never a valid id: no store round trip
        return await self.ctx.store.get_client(client_id)

    async def list(self) -> Sequence[Client]:
        return await self.ctx.store.list_clients()


def _invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "client authentication failed", status=401)
