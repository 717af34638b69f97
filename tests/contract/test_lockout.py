"""Unknown-username lockouts over each Ephemeral backend, as two nodes see them.

On Redis two nodes (two PhantomLockouts, two clients) share the failure count and the
lock, so an attacker spreading guesses over the nodes is locked all the same; in memory
each node counts alone (one node per process: that is what Redis is for).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.conftest import EphemeralBackend
from tokenward.server.lockout import LockPolicy, PhantomLockouts, lock_until

pytestmark = pytest.mark.anyio
POLICY = LockPolicy(threshold=5, base=30, cap=10**9)


def node(backend: EphemeralBackend) -> PhantomLockouts:
    return PhantomLockouts(backend.open(), clock=backend.clock)


async def test_a_lock_made_on_one_node_holds_on_the_other_only_on_redis(
    ephemeral_backend: EphemeralBackend,
) -> None:
    a, b = node(ephemeral_backend), node(ephemeral_backend)
    now = ephemeral_backend.clock()
    for _ in range(2):  # guesses spread over the nodes
        assert await a.record_failure("mallory", now, POLICY) is None
        assert await b.record_failure("mallory", now, POLICY) is None
    locked = await a.record_failure("mallory", now, POLICY)
    if ephemeral_backend.shared:  # the fifth failure anywhere locks everywhere
        assert locked == now + 30
        assert await b.locked_until("mallory", now) == now + 30
    else:  # a has seen three, b two
        assert locked is None
        assert await b.locked_until("mallory", now) is None
    assert await b.locked_until("someone-else", now) is None


async def test_concurrent_failures_on_two_nodes_all_count(
    ephemeral_backend: EphemeralBackend,
) -> None:
    a, b = node(ephemeral_backend), node(ephemeral_backend)
    now = ephemeral_backend.clock()
    await asyncio.gather(
        *(n.record_failure("mallory", now, POLICY) for _ in range(10) for n in (a, b))
    )
    per_node = 20 if ephemeral_backend.shared else 10
    # the lock of the highest count wins: no lost increment, no lock shortened by a race
    assert await a.locked_until("mallory", now) == lock_until(per_node, now, POLICY)


async def test_any_name_is_a_key(ephemeral_backend: EphemeralBackend) -> None:
    """Unknown names are whatever a client sent: glob characters, lone surrogates."""
    a, b = node(ephemeral_backend), node(ephemeral_backend)
    now = ephemeral_backend.clock()
    odd = ["mal*lory", "[x]?", "\ud800", "名前", "a:b:c"]
    for name in odd:
        for _ in range(5):
            await a.record_failure(name, now, POLICY)
    expected = now + 30 if ephemeral_backend.shared else None
    assert [await b.locked_until(name, now) for name in odd] == [expected] * len(odd)
    assert await b.locked_until("mallory", now) is None
