"""One error hierarchy for all of tokenward.

Every exception we raise derives from :class:`TokenwardError`. Errors that reach a
client carry a stable wire ``error`` code (RFC 6749 §5.2 / RFC 6750 §3.1), an HTTP
``status`` and an ``expose`` flag saying whether ``detail`` may be shown; the HTTP
shape itself is decided in one place (the server's error handler). Token rejections
also carry ``code``: a stable, machine-readable reason for logs and the CLI, which is
never put on the wire, so every rejection looks the same to a client (SECURITY.md R21).
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "BadRequest",
    "ConfigError",
    "Conflict",
    "ExpiredToken",
    "InvalidAlgorithm",
    "InvalidClaims",
    "InvalidKey",
    "InvalidSignature",
    "InvalidToken",
    "JWKSError",
    "KeyNotFound",
    "KeyStoreError",
    "MalformedToken",
    "MasterKeyError",
    "NotFound",
    "OAuthError",
    "RateLimited",
    "ReservedClaim",
    "RevokedToken",
    "SessionRevoked",
    "StoreUnavailable",
    "TokenNotYetValid",
    "TokenwardError",
    "WrongTokenType",
]


class TokenwardError(Exception):
    """Root of every tokenward exception."""

    error: str = "server_error"
    status: int = 500
    expose: bool = False
    code: str = "error"

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail or self.__class__.__doc__ or self.code)
        self.detail = detail
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class ConfigError(TokenwardError):
    """The configuration is invalid or insecure."""

    code = "config"


class InvalidKey(TokenwardError):
    """A key is unusable for the requested operation (type, size, curve or algorithm)."""

    code = "invalid_key"


class KeyStoreError(TokenwardError):
    """The key store on disk is missing, unreadable or corrupt."""

    code = "key_store"


class MasterKeyError(KeyStoreError):
    """The master key is absent, malformed, or does not open the key store."""

    code = "master_key"


class JWKSError(TokenwardError):
    """A JWK Set is malformed, unsafe (RFC 8725 / SECURITY.md R23) or unreachable."""

    code = "jwks"


class ReservedClaim(TokenwardError, ValueError):
    """An extra claim tried to override one the issuer sets itself."""

    code = "reserved_claim"


class InvalidToken(TokenwardError):
    """The token was rejected. Clients always see RFC 6750 ``invalid_token``."""

    error = "invalid_token"
    status = 401
    expose = True
    code = "invalid_token"


class MalformedToken(InvalidToken):
    """The token is not a well-formed compact JWS (R1–R5, R19)."""

    code = "malformed"


class InvalidAlgorithm(InvalidToken):
    """The token's algorithm is not allowed or does not match its key (R7, R8)."""

    code = "invalid_algorithm"


class KeyNotFound(InvalidToken):
    """No configured key has the token's ``kid`` (R6)."""

    code = "unknown_kid"


class InvalidSignature(InvalidToken):
    """The signature does not verify (R10–R12)."""

    code = "bad_signature"


class InvalidClaims(InvalidToken):
    """A claim is missing, of the wrong type, or has the wrong value (R13–R16)."""

    code = "invalid_claims"


class ExpiredToken(InvalidClaims):
    """The token has expired (R13)."""

    code = "expired"


class TokenNotYetValid(InvalidClaims):
    """The token's ``nbf`` or ``iat`` lies in the future (R13)."""

    code = "not_yet_valid"


class WrongTokenType(InvalidToken):
    """The token's ``typ`` is not the one this validator accepts (R17)."""

    code = "wrong_type"


class RevokedToken(InvalidToken):
    """The token was revoked (R22)."""

    code = "revoked"


# -- request-level errors (the server maps these to HTTP in server/errors.py only) -------------


class BadRequest(TokenwardError):
    """The request is malformed or fails validation."""

    error = "invalid_request"
    status = 400
    expose = True
    code = "bad_request"


class AuthenticationFailed(TokenwardError):
    """Credentials were wrong; deliberately says nothing about which part (no enumeration)."""

    error = "invalid_credentials"
    status = 401
    expose = True
    code = "authentication_failed"


class AccessDenied(TokenwardError):
    """Authenticated, but not allowed (RFC 6750 §3.1 ``insufficient_scope``)."""

    error = "insufficient_scope"
    status = 403
    expose = True
    code = "access_denied"


class NotFound(TokenwardError):
    """No such resource (or not one of yours)."""

    error = "not_found"
    status = 404
    expose = True
    code = "not_found"


class Conflict(TokenwardError):
    """The resource already exists or changed underneath."""

    error = "conflict"
    status = 409
    expose = True
    code = "conflict"


class RateLimited(TokenwardError):
    """Too many attempts; ``retry_after`` seconds until the next may succeed."""

    error = "rate_limited"
    status = 429
    expose = True
    code = "rate_limited"

    def __init__(self, detail: str = "", *, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after + 0.999))


class OAuthError(TokenwardError):
    """An RFC 6749 §5.2 error; ``error`` is one of the registered codes."""

    status = 400
    expose = True
    code = "oauth"

    def __init__(self, error: str, detail: str = "", *, status: int = 400) -> None:
        super().__init__(detail or error, code=error)
        self.error = error
        self.status = status


# -- client side (sdk/client.py) ------------------------------------------------------------


class SessionRevoked(TokenwardError):
    """The session is over: the server refused the refresh token (RFC 6749 §5.2
    ``invalid_grant``: revoked, expired, reused or unknown) or none is stored. Log in again."""

    code = "session_revoked"


class StoreUnavailable(TokenwardError):
    """The database cannot be reached right now; nothing was written. Retry shortly."""

    error = "temporarily_unavailable"
    status = 503
    expose = True
    code = "store_unavailable"
