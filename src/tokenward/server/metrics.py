"""Prometheus metrics, one registry per app (no process-global state; DESIGN.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["Metrics"]

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.logins = Counter("tokenward_logins", "Login attempts", ["result"], registry=r)
        self.refreshes = Counter("tokenward_refreshes", "Refresh attempts", ["result"], registry=r)
        self.reuse_detected = Counter(
            "tokenward_refresh_reuse_detected", "Refresh token reuse detections", registry=r
        )
        self.verifications = Counter(
            "tokenward_verifications", "Access token verifications", ["result"], registry=r
        )
        self.revocations = Counter("tokenward_revocations", "Revocations", ["kind"], registry=r)
        self.latency = Histogram(
            "tokenward_request_seconds", "Request latency", ["route"], buckets=_FAST, registry=r
        )

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
