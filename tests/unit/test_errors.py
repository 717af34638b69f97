"""One error root; token rejections all look like RFC 6750 invalid_token (R21)."""

from __future__ import annotations

import inspect

import pytest

from tokenward import errors


def _classes() -> list[type[errors.TokenwardError]]:
    return [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.TokenwardError)
    ]


def test_every_error_derives_from_the_root() -> None:
    names = set(errors.__all__)
    assert {c.__name__ for c in _classes()} == names


@pytest.mark.parametrize(
    "cls", [c for c in _classes() if issubclass(c, errors.InvalidToken)], ids=lambda c: c.__name__
)
def test_token_errors_share_the_wire_shape(cls: type[errors.InvalidToken]) -> None:
    exc = cls("detail")
    assert (exc.error, exc.status, exc.expose) == ("invalid_token", 401, True)
    assert exc.code and exc.code.isidentifier()


def test_codes_are_unique() -> None:
    codes = [c.code for c in _classes()]
    assert len(codes) == len(set(codes))


def test_code_can_be_overridden_and_repr_is_plain() -> None:
    exc = errors.InvalidClaims("x", code="custom")
    assert exc.code == "custom" and repr(exc) == "InvalidClaims(code='custom', detail='x')"
