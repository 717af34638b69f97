"""Django: the middleware + @require, and DRF's TokenwardAuthentication + HasScopes, against
the shared table; async middleware mode; settings.

This module is its own ROOT_URLCONF. Django settings are process-wide, so they are
configured once with the bare minimum and every test overrides what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:  # the same base as tests/integration/test_examples.py
    settings.configure(
        SECRET_KEY="tokenward-tests-only",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
        USE_TZ=True,
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokenward import KeyRing, Verifier
from tokenward.sdk.django import (
    HasScopes,
    TokenwardAuthentication,
    TokenwardMiddleware,
    guard_from_settings,
    require,
)

from .behaviour import (
    BITS,
    CASES,
    IDS,
    INVALID,
    NO_CREDENTIALS,
    ROUTES,
    Case,
    World,
    check,
)

MIDDLEWARE = ["tokenward.sdk.django.TokenwardMiddleware"]


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sub": request.principal.subject})


async def async_whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sub": request.principal.subject})


def anyone(request: HttpRequest) -> JsonResponse:
    who = request.principal
    return JsonResponse({"sub": who.subject if who else None})


def drf_view(need: Any) -> Any:
    class Protected(APIView):
        authentication_classes = (TokenwardAuthentication,)
        permission_classes = (HasScopes,)
        required_scopes, required_roles = need.scopes, need.roles
        required_permissions = need.permissions

        def get(self, request: Request) -> Response:
            assert request.user is request.auth
            return Response({"sub": request.user.subject})

    return Protected.as_view()


@method_decorator(require(roles="admin"), name="dispatch")
class AdminView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"sub": request.principal.subject})


urlpatterns = [
    *(
        path(p[1:], require(scopes=n.scopes, roles=n.roles, permissions=n.permissions)(whoami))
        for p, n in ROUTES.items()
    ),
    *(path(f"drf{p}", drf_view(n)) for p, n in ROUTES.items()),
    path("async", require()(async_whoami)),
    path("anyone", anyone),
    path("health", anyone),
    path("cbv", AdminView.as_view()),
]


@pytest.fixture
def world(ring: KeyRing) -> World:
    return World(ring)


@pytest.fixture
def configured(world: World) -> Iterator[dict[str, Any]]:
    conf: dict[str, Any] = {
        "VERIFIER": world.verifier,
        "PERMISSION_BITS": BITS,
        "EXCLUDE": ["/health"],
    }
    with override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE, TOKENWARD=conf):
        yield conf


def headers(auth: str | None) -> dict[str, str]:
    return {"authorization": auth} if auth else {}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_behaviour_table_views(configured: Any, world: World, case: Case) -> None:
    r = Client().get(case.path, headers=headers(case.authorization(world)))
    check(case, r.status_code, r.headers.get("www-authenticate"), r.json(), r["content-type"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_behaviour_table_drf(configured: Any, world: World, case: Case) -> None:
    r = Client().get(f"/drf{case.path}", headers=headers(case.authorization(world)))
    # DRF renders its own media type (application/json); status, challenge and body match.
    check(case, r.status_code, r.headers.get("www-authenticate"), r.json(), None)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_middleware_and_async_views(configured: Any, world: World) -> None:
    client = AsyncClient()
    ok = await client.get("/async", headers=headers(f"Bearer {world.token()}"))
    assert ok.json() == {"sub": "alice"}
    bad = await client.get("/anyone", headers=headers(f"Bearer {world.expired()}"))
    assert (bad.status_code, bad.headers["www-authenticate"]) == (401, INVALID)
    anonymous = await client.get("/async")
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, NO_CREDENTIALS)


def test_anonymous_passes_a_bad_token_does_not_and_exclusions_are_left_alone(
    configured: Any, world: World
) -> None:
    client = Client()
    assert client.get("/anyone").json() == {"sub": None}
    assert client.get("/anyone", headers=headers(f"Bearer {world.expired()}")).status_code == 401
    assert client.get("/health", headers=headers(f"Bearer {world.expired()}")).status_code == 200


def test_required_refuses_anonymous_everywhere(configured: dict[str, Any], world: World) -> None:
    with override_settings(TOKENWARD={**configured, "REQUIRED": True}):
        r = Client().get("/anyone")
        assert (r.status_code, r.headers["www-authenticate"]) == (401, NO_CREDENTIALS)
        assert Client().get("/health").status_code == 200  # still excluded


def test_class_based_views_with_method_decorator(configured: Any, world: World) -> None:
    admin = world.token(claims={"roles": ["admin"]})
    assert Client().get("/cbv", headers=headers(f"Bearer {admin}")).json() == {"sub": "alice"}
    assert Client().get("/cbv", headers=headers(f"Bearer {world.token()}")).status_code == 403


def test_the_decorator_and_drf_need_the_middleware(configured: Any, world: World) -> None:
    with override_settings(MIDDLEWARE=[]):
        for url in ("/any", "/drf/any"):
            with pytest.raises(ImproperlyConfigured, match="TokenwardMiddleware"):
                Client().get(url, headers=headers(f"Bearer {world.token()}"))


VERIFIER_FROM_FACTORY: list[Verifier] = []


def make_verifier() -> Verifier:
    return VERIFIER_FROM_FACTORY[-1]


def test_verifier_settings(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    VERIFIER_FROM_FACTORY.append(world.verifier)
    guard = guard_from_settings({"VERIFIER": f"{__name__}.make_verifier", "REALM": "api"})
    assert guard.verifier is world.verifier and guard.realm == "api"

    remote = guard_from_settings({"ISSUER": "https://a.example", "JWKS_URL": "https://a.example/k"})
    assert "RemoteJWKS('https://a.example/k'" in repr(remote.verifier)

    seen: dict[str, Any] = {}

    def from_issuer(issuer: str, **kw: Any) -> Verifier:
        seen.update(kw, iss=issuer)
        return world.verifier

    monkeypatch.setattr(Verifier, "from_issuer", from_issuer)
    guard_from_settings({"ISSUER": "https://a.example"})
    assert seen == {"iss": "https://a.example", "audience": "https://a.example"}

    with pytest.raises(ImproperlyConfigured, match="ISSUER"):
        guard_from_settings({"AUDIENCE": "x"})


def test_middleware_needs_settings() -> None:
    with override_settings(), pytest.raises(ImproperlyConfigured, match="TOKENWARD"):
        del settings.TOKENWARD
        TokenwardMiddleware(lambda request: None)
