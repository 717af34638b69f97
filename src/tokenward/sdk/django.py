"""Django and Django REST framework over the shared core.

    # settings.py
    MIDDLEWARE = [..., "tokenward.sdk.django.TokenwardMiddleware"]
    TOKENWARD = {"ISSUER": "https://auth.example", "AUDIENCE": "https://api.example"}

    @require(scopes=["items:read"])          # a plain view; request.principal is the caller
    def items(request): ...

    class Items(APIView):                    # DRF
        authentication_classes = [TokenwardAuthentication]
        permission_classes = [HasScopes]
        required_scopes = ["items:read"]     # also required_roles / required_permissions

``TOKENWARD`` keys: ``ISSUER`` and ``AUDIENCE`` (default: the issuer), then either nothing
(the keys are discovered, RFC 8414) or ``JWKS_URL``; or ``VERIFIER``: a verifier, or a
dotted path to a factory returning one. Optional: ``REQUIRED`` (refuse anonymous requests
everywhere), ``EXCLUDE`` (path prefixes left alone), ``PERMISSION_BITS`` and ``BITS_CLAIM``
(see Principal.from_claims), ``REALM``.

The middleware holds the one Guard (built when Django loads the middleware, so there is no
module state) and authenticates every request; the decorator and the DRF classes read what
it found, so they need it installed. A refused Bearer token is a 401 everywhere (RFC 6750
§3.1); DRF refusals carry the same status, challenge and body (DRF renders it as JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]
from rest_framework.authentication import BaseAuthentication  # type: ignore[import-untyped]
from rest_framework.exceptions import APIException  # type: ignore[import-untyped]
from rest_framework.permissions import BasePermission  # type: ignore[import-untyped]

from tokenward.errors import InvalidToken
from tokenward.sdk.guard import AUTH_ERRORS, Failure, Guard
from tokenward.sdk.jwks import RemoteJWKS
from tokenward.sdk.principal import Principal, requirement
from tokenward.tokens import Verifier

__all__ = ["HasScopes", "TokenwardAuthentication", "TokenwardMiddleware", "guard_from_settings"]

F = TypeVar("F", bound=Callable[..., Any])


def _verifier(conf: Mapping[str, Any]) -> Any:
    source = conf.get("VERIFIER")
    if isinstance(source, str):
        return import_string(source)()
    if source is not None:
        return source
    if not conf.get("ISSUER"):
        raise ImproperlyConfigured("TOKENWARD needs ISSUER (and AUDIENCE) or VERIFIER")
    issuer, audience = conf["ISSUER"], conf.get("AUDIENCE") or conf["ISSUER"]
    if conf.get("JWKS_URL"):
        return Verifier(RemoteJWKS(conf["JWKS_URL"]), issuer=issuer, audience=audience)
    return Verifier.from_issuer(issuer, audience=audience)


def guard_from_settings(conf: Mapping[str, Any]) -> Guard:
    factory = Principal.factory(
        permission_bits=conf.get("PERMISSION_BITS"), bits_claim=conf.get("BITS_CLAIM", "perm")
    )
    return Guard(_verifier(conf), principal_factory=factory, realm=conf.get("REALM", "tokenward"))


def _response(failure: Failure) -> HttpResponse:
    return HttpResponse(failure.body, status=failure.status, headers=dict(failure.headers))


def _guard_of(request: HttpRequest) -> Guard:
    guard = getattr(request, "tokenward", None)
    if not isinstance(guard, Guard):
        raise ImproperlyConfigured("add tokenward.sdk.django.TokenwardMiddleware to MIDDLEWARE")
    return guard


class TokenwardMiddleware:
    """Sets ``request.principal`` (None when anonymous) and ``request.tokenward`` (the Guard)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        conf: Mapping[str, Any] | None = getattr(settings, "TOKENWARD", None)
        if conf is None:
            raise ImproperlyConfigured("settings.TOKENWARD is missing")
        self.guard = guard_from_settings(conf)
        self.required = bool(conf.get("REQUIRED", False))
        self.exclude = tuple(p.rstrip("/") for p in conf.get("EXCLUDE", ()))
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _authenticate(self, request: HttpRequest) -> HttpResponse | None:
        request.tokenward, request.principal = self.guard, None
        path: str = request.path_info
        if any(path == p or path.startswith(p + "/") for p in self.exclude):
            return None
        try:
            who = self.guard.authenticate(request.headers.get("Authorization"))
            request.principal = self.guard.authorize(who) if self.required else who
        except AUTH_ERRORS as exc:
            return _response(self.guard.failure(exc))
        return None

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._authenticate(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> Any:
        return self._authenticate(request) or await self.get_response(request)


def require(
    *,
    scopes: str | Iterable[str] = (),
    roles: str | Iterable[str] = (),
    permissions: str | Iterable[str] = (),
) -> Callable[[F], F]:
    """A view decorator (sync or async views; ``method_decorator`` for class-based ones)."""
    need = requirement(scopes=scopes, roles=roles, permissions=permissions)

    def refusal(request: HttpRequest) -> HttpResponse | None:
        guard = _guard_of(request)
        try:
            guard.authorize(request.principal, need)
        except AUTH_ERRORS as exc:
            return _response(guard.failure(exc))
        return None

    def decorator(view: F) -> F:
        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return refusal(request) or await view(request, *args, **kwargs)

            return cast(F, async_wrapper)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return refusal(request) or view(request, *args, **kwargs)

        return cast(F, wrapper)

    return decorator


class _Refusal(APIException):  # type: ignore[misc]
    def __init__(self, failure: Failure) -> None:
        super().__init__()
        self.status_code = failure.status
        self.detail = failure.problem  # set after __init__, which would stringify the numbers
        self.auth_header = failure.challenge  # DRF's handler sends it as WWW-Authenticate


class TokenwardAuthentication(BaseAuthentication):  # type: ignore[misc]
    """DRF authentication: ``request.user`` and ``request.auth`` are the Principal."""

    def authenticate(self, request: Any) -> tuple[Principal, Principal] | None:
        _guard_of(request._request)
        who: Principal | None = request._request.principal
        return None if who is None else (who, who)

    def authenticate_header(self, request: Any) -> str:
        guard = _guard_of(request._request)
        return guard.challenge(InvalidToken("authentication required", code="missing_token"))


class HasScopes(BasePermission):  # type: ignore[misc]
    """The view's ``required_scopes`` (and ``required_roles`` / ``required_permissions``)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        guard = _guard_of(request._request)
        need = requirement(
            scopes=getattr(view, "required_scopes", ()),
            roles=getattr(view, "required_roles", ()),
            permissions=getattr(view, "required_permissions", ()),
        )
        who = request.auth if isinstance(request.auth, Principal) else None
        try:
            guard.authorize(who, need)
        except AUTH_ERRORS as exc:
            raise _Refusal(guard.failure(exc)) from None
        return True
