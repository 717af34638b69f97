"""Unknown-username lockout across two in-process nodes (SECURITY.md "Accounts").

With Redis configured the nodes share the count and the lock of a name that does not
exist, just as they share a real account's through the database, so spreading guesses
over the nodes gains nothing and the answers still do not tell the two apart. Each node
has a SQLite file of its own: only Redis joins them (a key prefix per test). Needs
TOKENWARD_TEST_REDIS_URL for the shared case.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.contract.conftest import delete_prefix
from tokenward import FrozenClock
from tokenward.server.settings import Settings

from .test_revocation_feed import Node, running_node

pytestmark = pytest.mark.anyio
REDIS_ENV = "TOKENWARD_TEST_REDIS_URL"
WRONG = "not the right password"


@pytest.fixture(params=["memory", "redis"])
async def two_nodes(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    clock: FrozenClock,
) -> AsyncIterator[tuple[Node, Node, bool]]:
    redis_url = ""
    if request.param == "redis":
        redis_url = os.environ.get(REDIS_ENV, "")
        if not redis_url:
            pytest.skip(f"set {REDIS_ENV} for the shared lockout")
    prefix = f"tw-test-{uuid.uuid4().hex[:12]}"

    def settings(name: str) -> Settings:
        return make_settings(
            data_dir=tmp_path / name,
            database_url=f"sqlite+aiosqlite:///{tmp_path / name}.db",
            redis_url=redis_url,
            redis_prefix=prefix,
        )

    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(running_node(settings("a"), clock))
            b = await stack.enter_async_context(running_node(settings("b"), clock))
            yield a, b, bool(redis_url)
    finally:
        if redis_url:
            await delete_prefix(redis_url, prefix)


async def fail(node: Node, username: str = "mallory") -> tuple[int, str | None]:
    r = await node.http.post("/api/v1/login", json={"username": username, "password": WRONG})
    return r.status_code, r.headers.get("retry-after")


async def test_guesses_spread_over_two_nodes_lock_the_name_on_both(
    two_nodes: tuple[Node, Node, bool], clock: FrozenClock
) -> None:
    a, b, shared = two_nodes
    answers = [await fail(node) for node in (a, b, a, b, a)]  # threshold 5: the fifth locks
    assert [status for status, _ in answers] == [401] * 5
    if shared:
        assert await fail(b) == (429, "30")
        assert await fail(a) == (429, "30")
        clock.advance(31)
        assert await fail(b) == (401, None)  # the sixth failure: locked for twice as long
        assert await fail(a) == (429, "60")
    else:  # each node counts alone: a has seen three failures, b two
        assert [await fail(b), await fail(a)] == [(401, None), (401, None)]
    assert await fail(b, "someone-else") == (401, None)
