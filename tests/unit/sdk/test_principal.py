"""The shared core: Principal from claims, requirements, Bearer parsing, the Guard's answers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from tokenward import KeyRing
from tokenward.errors import AccessDenied, InvalidToken, MalformedToken
from tokenward.sdk.guard import PROBLEM_JSON, Guard, bearer_token
from tokenward.sdk.principal import (
    ANY,
    MissingRights,
    Principal,
    Requirement,
    requirement,
    requires_permissions,
    requires_roles,
    requires_scopes,
)

from ...conftest import AUD, ISS
from .behaviour import BITS, World

CLAIMS: dict[str, Any] = {
    "iss": ISS,
    "sub": "alice",
    "aud": AUD,
    "scope": "read write",
    "roles": ["admin", 7, "user"],
    "permissions": ["export"],
    "perm": 3,
}


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


@pytest.fixture
def alice() -> Principal:
    return Principal.from_claims(CLAIMS, permission_bits=BITS)


# -- Principal -----------------------------------------------------------------------------
def test_principal_from_claims(alice: Principal) -> None:
    assert (alice.subject, alice.issuer) == ("alice", ISS)
    assert alice.scopes == {"read", "write"}
    assert alice.roles == {"admin", "user"}  # non-strings ignored
    assert alice.permissions == {"export", "read", "write"}  # the list plus bits 1 and 2
    assert alice.claims == CLAIMS
    assert alice.is_authenticated


def test_principal_repr_leaves_the_claims_out(alice: Principal) -> None:
    assert "claims" not in repr(alice) and AUD not in repr(alice) and "alice" in repr(alice)


def test_scope_may_be_a_list_and_absent_claims_grant_nothing() -> None:
    p = Principal.from_claims({"sub": "s", "iss": ISS, "scope": ["a", "b", 3]})
    assert p.scopes == {"a", "b"}
    assert p.roles == p.permissions == frozenset()


@pytest.mark.parametrize(
    ("value", "granted"),
    [
        (0, set()),
        (1, {"read"}),
        (6, {"write", "admin"}),
        (7, {"read", "write", "admin"}),
        (True, set()),  # JSON true is not bit 1
        (-1, set()),  # all bits set in two's complement: must not grant everything
        ("7", set()),
        (7.0, set()),
        (None, set()),
    ],
)
def test_permission_bits(value: object, granted: set[str]) -> None:
    p = Principal.from_claims({"sub": "s", "perm": value}, permission_bits=BITS)
    assert p.permissions == granted


def test_a_mask_of_several_bits_needs_all_of_them() -> None:
    bits = {"manage": 6}
    assert Principal.from_claims({"perm": 4}, permission_bits=bits).permissions == frozenset()
    assert Principal.from_claims({"perm": 6}, permission_bits=bits).permissions == {"manage"}


def test_bits_claim_is_configurable_and_bits_need_a_table() -> None:
    make = Principal.factory(permission_bits=BITS, bits_claim="p")
    assert make({"p": 4, "perm": 1}).permissions == {"admin"}
    assert Principal.from_claims({"perm": 7}).permissions == frozenset()


@pytest.mark.parametrize("mask", [0, -2, True, "2", 2.0])
def test_factory_refuses_a_bad_bit_table(mask: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        Principal.factory(permission_bits={"x": mask})  # type: ignore[dict-item]


# -- requirements --------------------------------------------------------------------------
def test_requirements_pass_and_return_the_principal(alice: Principal) -> None:
    assert requires_scopes("read")(alice) is alice
    assert requires_roles("admin", "user")(alice) is alice
    assert requires_permissions("write", "export")(alice) is alice
    assert ANY(alice) is alice


@pytest.mark.parametrize(
    ("need", "code", "detail"),
    [
        (
            requires_scopes("read", "delete", "audit"),
            "missing_scope",
            "missing scopes: audit delete",
        ),
        (requires_roles("owner"), "missing_role", "missing role: owner"),
        (requires_permissions("admin"), "missing_permission", "missing permission: admin"),
    ],
)
def test_requirements_name_what_is_missing(
    alice: Principal, need: Requirement, code: str, detail: str
) -> None:
    with pytest.raises(AccessDenied) as info:
        need(alice)
    assert isinstance(info.value, MissingRights)
    assert (info.value.code, info.value.detail, info.value.status) == (code, detail, 403)


def test_requirements_combine_and_scopes_are_checked_first(alice: Principal) -> None:
    need = requires_roles("owner") & requires_scopes("delete")
    assert need == Requirement(scopes=("delete",), roles=("owner",))
    with pytest.raises(MissingRights) as info:
        need(alice)
    assert info.value.kind == "scope" and info.value.required_scopes == ("delete",)


def test_requirement_takes_a_string_as_one_name() -> None:
    assert requirement(scopes="read", roles="admin") == Requirement(("read",), ("admin",))


@pytest.mark.parametrize("scope", ["", "a b", 'a"b', "a\\b", "é"])
def test_requirement_refuses_what_is_not_a_scope_token(scope: str) -> None:
    with pytest.raises(ValueError, match="scope token"):
        requires_scopes(scope)


# -- Bearer parsing (RFC 6750 §2.1) --------------------------------------------------------
@pytest.mark.parametrize("header", [None, "", "   ", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearerx"])
def test_no_bearer_credentials(header: str | None) -> None:
    assert bearer_token(header) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer  a-b_c~+/==", "a-b_c~+/=="),
        ("BEARER x", "x"),
    ],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a,b",
        "Bearer a, Bearer b",
        "Bearer a\tb",
        "Bearer é",
    ],
)
def test_malformed_bearer_credentials(header: str) -> None:
    with pytest.raises(MalformedToken):
        bearer_token(header)


# -- Guard ---------------------------------------------------------------------------------
def test_guard_authenticates_and_authorizes(world: World) -> None:
    guard = Guard(world.verifier, principal_factory=world.factory)
    who = guard.check(f"Bearer {world.token(claims={'perm': 2})}", requires_permissions("write"))
    assert who.subject == "alice" and who.permissions == {"write"}
    assert guard.authenticate(None) is None
    with pytest.raises(InvalidToken) as info:
        guard.check(None)
    assert info.value.code == "missing_token"
    with pytest.raises(InvalidToken) as info:
        guard.check(f"Bearer {world.expired()}")
    assert info.value.code == "expired"


def test_guard_failures(world: World) -> None:
    guard = Guard(world.verifier, realm="api")
    missing = guard.failure(InvalidToken("x", code="missing_token"))
    assert (missing.status, missing.challenge) == (401, 'Bearer realm="api"')
    assert missing.problem["detail"] == "authentication required"
    refused = guard.failure(MalformedToken("secret detail"))
    assert refused.challenge == 'Bearer realm="api", error="invalid_token"'
    assert orjson.loads(refused.body) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "the access token is invalid",  # R21: never why
        "error": "invalid_token",
    }
    assert dict(refused.headers)["content-type"] == PROBLEM_JSON
    denied = guard.failure(MissingRights("scope", ["b"], ("a", "b")))
    assert denied.status == 403
    assert denied.challenge == 'Bearer realm="api", error="insufficient_scope", scope="a b"'
    assert denied.problem["detail"] == "missing scope: b"
    plain = guard.failure(AccessDenied("no"))
    assert plain.challenge == 'Bearer realm="api", error="insufficient_scope"'


def test_guard_checks_its_configuration(world: World) -> None:
    with pytest.raises(TypeError):
        Guard(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="realm"):
        Guard(world.verifier, realm='a"b')


def test_guard_logs_the_reason_never_the_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.expired()
    with caplog.at_level(logging.DEBUG, logger="tokenward.sdk"), pytest.raises(InvalidToken):
        Guard(world.verifier).authenticate(f"Bearer {token}")
    assert "expired" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_principal_equality_ignores_how_it_was_built(alice: Principal) -> None:
    explicit = Principal(
        "alice",
        ISS,
        scopes=frozenset({"read", "write"}),
        roles=frozenset({"admin", "user"}),
        permissions=frozenset({"export", "read", "write"}),
    )
    assert explicit == alice and hash(explicit) == hash(alice) and explicit.claims == {}
    bare = Principal("alice", ISS)
    assert bare != alice and bare.scopes == bare.roles == bare.permissions == frozenset()
    with pytest.raises(AttributeError):
        alice.subject = "mallory"  # type: ignore[misc]
