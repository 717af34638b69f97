"""Plain Django views with ``@require`` and DRF views with ``HasScopes``.

Routes: ``GET /health`` (open, excluded in settings), ``GET /me`` (any valid token),
``GET /admin`` (role ``admin``), ``GET /items`` (DRF, scope ``items:read``),
``POST /items/new`` (DRF, permission ``write``: a ``permissions`` claim or bit 2 of ``perm``).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tokenward.sdk.django import HasScopes, TokenwardAuthentication, require


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require()
def me(request: HttpRequest) -> JsonResponse:
    who = request.principal  # set by TokenwardMiddleware
    body = {"sub": who.subject, "roles": sorted(who.roles), "scopes": sorted(who.scopes)}
    return JsonResponse(body)


@require(roles="admin")
def admin(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"admin": request.principal.subject})


class Protected(APIView):
    # Or project-wide: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES / _PERMISSION_CLASSES.
    authentication_classes = (TokenwardAuthentication,)
    permission_classes = (HasScopes,)


class Items(Protected):
    required_scopes = ("items:read",)  # checked by HasScopes

    def get(self, request: Request) -> Response:
        return Response(["apple", "pear"])


class NewItem(Protected):
    required_permissions = ("write",)

    def post(self, request: Request) -> Response:
        return Response({"created_by": request.user.subject}, status=201)
