"""Settings for the tokenward Django example: a stateless API, no database.

The only tokenward-specific parts are the middleware and ``TOKENWARD``.
``TOKENWARD_ISSUER`` names the tokenward server; the verifier discovers its keys from
``/.well-known/oauth-authorization-server`` when Django loads the middleware.
"""

from __future__ import annotations

import os
from typing import Any

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-example-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
DATABASES: dict[str, Any] = {}
ROOT_URLCONF = "exampleproject.urls"
USE_TZ = True

MIDDLEWARE = ["tokenward.sdk.django.TokenwardMiddleware"]

_ISSUER = os.environ.get("TOKENWARD_ISSUER", "http://127.0.0.1:8000")
TOKENWARD = {
    "ISSUER": _ISSUER,
    "AUDIENCE": os.environ.get("TOKENWARD_AUDIENCE") or _ISSUER,
    "EXCLUDE": ["/health"],
    "PERMISSION_BITS": {"read": 1, "write": 2, "admin": 4},  # the `perm` bitfield claim
}

REST_FRAMEWORK = {"UNAUTHENTICATED_USER": None}  # the views name tokenward's DRF classes
