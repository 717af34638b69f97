"""Validation of partial record updates, shared by every backend so they accept the same."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tokenward.store.base import Family, RefreshToken, User

__all__ = ["check_first_token", "later_lock", "user_changes"]

# ``id`` is the identity the change is addressed to, never a change itself.
_USER_FIELDS = frozenset(f.name for f in dataclasses.fields(User)) - {"id"}

# Tuple-typed fields arrive as any sequence from callers; records hold tuples.
_TUPLES = frozenset({"roles"})


def user_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes, checked against the fields of :class:`User` and normalised.

    An unknown field is a programming error, reported like an unexpected keyword
    argument (TypeError), before anything is written.
    """
    unknown = sorted(set(changes) - _USER_FIELDS)
    if unknown:
        raise TypeError(f"update_user() got unknown field(s): {', '.join(unknown)}")
    for name in _TUPLES & set(changes):
        if isinstance(changes[name], str):  # tuple("admin") would be five one-letter roles
            raise TypeError(f"update_user() field {name} takes a sequence of strings")
    return {k: tuple(v) if k in _TUPLES else v for k, v in changes.items()}


def check_first_token(family: Family, first: RefreshToken) -> None:
    """A family starts with a token of its own (a programming error otherwise)."""
    if first.family_id != family.id or first.parent_hash is not None:
        raise ValueError("start_family() needs a first token of this family, without parent")


def later_lock(current: float | None, earned: float | None) -> float | None:
    """The lock to keep: a new failure never shortens a lock already in place."""
    if current is None:
        return earned
    if earned is None:
        return current
    return max(current, earned)
