"""The rate limiter's memory storage: no thread per hit, expired windows still swept."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from limits.storage import memory as limits_memory

from tokenward.errors import RateLimited
from tokenward.server import ratelimit
from tokenward.server.ratelimit import Limiter, SweptMemoryStorage


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    # limits reads time.time(); the sweep reads time.monotonic(): both from this clock
    monkeypatch.setattr(limits_memory, "time", SimpleNamespace(time=fake.time))
    monkeypatch.setattr(
        ratelimit, "time", SimpleNamespace(time=fake.time, monotonic=fake.monotonic)
    )
    return fake


def test_hits_start_no_threads(clock: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = Limiter({"login:ip": "1000/minute"})
    storage = limiter._storage
    assert isinstance(storage, SweptMemoryStorage)
    storage.timer.join()  # the constructor's timer is over: limits' own hit would re-arm it
    started: list[threading.Timer] = []

    class CountingTimer(threading.Timer):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(limits_memory.threading, "Timer", CountingTimer)
    for n in range(200):
        clock.now += 0.02
        limiter.hit("login:ip", f"198.51.100.{n % 7}")
    assert started == []


def test_limits_still_hold_and_free_their_slot_in_time(clock: FakeTime) -> None:
    limiter = Limiter({"login:ip": "2/minute"})
    limiter.hit("login:ip", "a")
    limiter.hit("login:ip", "a")
    with pytest.raises(RateLimited) as caught:
        limiter.hit("login:ip", "a")
    assert 0 < caught.value.retry_after <= 60
    limiter.hit("login:ip", "b")  # another key has its own window
    clock.now += 61
    limiter.hit("login:ip", "a")


def test_expired_windows_are_swept(clock: FakeTime) -> None:
    limiter = Limiter({"login:ip": "5/second"})
    storage = limiter._storage
    assert isinstance(storage, SweptMemoryStorage)
    for n in range(50):
        limiter.hit("login:ip", f"k{n}")
    assert len(storage.events) == 50
    clock.now += 2  # every window expired; the next hit after SWEEP_SECONDS sweeps
    limiter.hit("login:ip", "fresh")
    assert [key.split("/")[2] for key in storage.events] == ["fresh"]
