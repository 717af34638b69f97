"""Security headers, request body limits and CORS (placeholder: completed by the app shell work)."""

from __future__ import annotations

from fastapi import FastAPI

from tokenward.server.settings import Settings

__all__ = ["install_middleware"]


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Install the HTTP middleware stack."""
