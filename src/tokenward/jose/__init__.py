"""The only place JOSE happens: algorithms, strict compact JWS, JWK (joserfc), JWE (joserfc)."""

from tokenward.jose.algorithms import ALGORITHMS, Algorithm, get_algorithm
from tokenward.jose.jws import Header, JWSVerifier, VerifyKey, b64decode, b64encode, sign_compact

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Header",
    "JWSVerifier",
    "VerifyKey",
    "b64decode",
    "b64encode",
    "get_algorithm",
    "sign_compact",
]
