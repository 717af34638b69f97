"""Audit events: structlog JSON lines and a row in the store, never a secret.

Every security-relevant event goes through ``Audit.emit``. Values under keys that look
like secrets are replaced before anything is logged or stored; a test scans captured
logs and stored events for passwords, tokens and secrets.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from tokenward.clock import Clock
from tokenward.store.base import AuditEvent, Store

__all__ = ["Audit", "RequestInfo"]

_SECRET_WORDS = ("password", "secret", "token", "cookie", "otp", "code", "authorization")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str = ""
    user_agent: str = ""


def redact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop values whose key names a secret (defence in depth: callers pass none)."""
    return {
        k: "[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) and k != "token_type" else v
        for k, v in data.items()
    }


def _json(value: Any, **_options: Any) -> str:
    # orjson: the audit line is written on every refresh, and the stdlib encoder was a
    # visible share of one (py-spy); anything it cannot encode is written as its repr
    return orjson.dumps(value, default=repr).decode()


def make_logger() -> Any:
    """A JSON audit logger on stdlib logging, without touching structlog's global config.

    Events the ``tokenward.audit`` logger would drop (its level) are dropped first, not
    rendered and then thrown away. ``tokenward serve`` writes them to stderr (cli/server.py).
    """
    return structlog.wrap_logger(
        logging.getLogger("tokenward.audit"),
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_json),
        ],
    )


class Audit:
    def __init__(self, store: Store, clock: Clock, logger: Any = None) -> None:
        self._store, self._clock = store, clock
        self._log = logger if logger is not None else make_logger()

    async def emit(self, type: str, **fields: Any) -> AuditEvent:
        """Log and store the event now (``fields`` as for :meth:`event`)."""
        event = self.event(type, **fields)
        await self.record(event)
        return event

    async def record(self, event: AuditEvent) -> None:
        """Log and store an event made by :meth:`event`."""
        self.log(event)
        await self._store.add_audit(event)

    def event(
        self,
        type: str,
        *,
        user_id: str | None = None,
        username: str | None = None,
        request: RequestInfo | None = None,
        session_id: str | None = None,
        **data: Any,
    ) -> AuditEvent:
        """The event, neither logged nor stored: for a store call that writes it in the
        same transaction as what it records (a refresh rotation); then :meth:`log` it."""
        info = request or RequestInfo()
        return AuditEvent(
            id=uuid.uuid4().hex,
            at=self._clock(),
            type=type,
            user_id=user_id,
            username=username,
            ip=info.ip or None,
            user_agent=info.user_agent or None,
            session_id=session_id,
            data=redact(data),
        )

    def log(self, event: AuditEvent) -> None:
        self._log.info(
            event.type,
            event_id=event.id,
            user_id=event.user_id,
            username=event.username,
            ip=event.ip,
            user_agent=event.user_agent,
            session_id=event.session_id,
            **event.data,
        )
