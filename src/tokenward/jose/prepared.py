"""Keys prepared once for the hot paths: a signer or verifier with its key bound.

For HMAC (RFC 2104) the key schedule — hashing the key-padded inner and outer blocks — is
the same for every message under one key. It is computed once when the key is loaded, and
each token then costs a copy of that keyed state plus the message blocks: about half the
work of a one-shot HMAC on a token-sized input. The other algorithms gain nothing from
preparation; their key is simply bound.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

__all__ = ["BoundSign", "BoundVerify", "hmac_binders"]

BoundSign = Callable[[bytes], bytes]  # data -> signature, the key already bound
BoundVerify = Callable[[bytes, bytes], bool]  # (data, signature) -> valid?


def hmac_binders(
    hash_cls: type[hashes.HashAlgorithm],
    sign: Callable[[Any, bytes], bytes],
    verify: Callable[[Any, bytes, bytes], bool],
) -> tuple[Callable[[Any], BoundSign], Callable[[Any], BoundVerify]]:
    """(bind_sign, bind_verify) for one HMAC hash; ``sign``/``verify`` are the one-shot
    functions, kept for a key that is not plain bytes so that it fails exactly as before."""

    def bind_sign(key: Any) -> BoundSign:
        if type(key) is not bytes:
            return functools.partial(sign, key)
        base = chmac.HMAC(key, hash_cls())

        def bound(data: bytes) -> bytes:
            h = base.copy()
            h.update(data)
            return h.finalize()

        return bound

    def bind_verify(key: Any) -> BoundVerify:
        if type(key) is not bytes:
            return functools.partial(verify, key)
        base = chmac.HMAC(key, hash_cls())

        def bound(data: bytes, sig: bytes) -> bool:
            h = base.copy()
            h.update(data)
            return hmac.compare_digest(h.finalize(), sig)  # R11: constant-time comparison

        return bound

    return bind_sign, bind_verify
