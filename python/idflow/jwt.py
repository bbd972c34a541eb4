"""Compact JWS / JWT: ``sign``, strict ``verify``, ``verify_jws`` and ``decode_unverified``.

``verify`` needs ``algorithms``; ``exp`` is required by default, the leeway is 60 s
(at most 300), tokens are capped at 16 KiB, and a token carrying ``aud`` is
refused unless ``audience`` names it. ``Verifier(key, algorithms=[...], ...)``
binds the key and options once for hot paths: ``Verifier.verify(token)``.
"""

from ._idflow import (
    Verifier,
    jwt_decode_unverified as decode_unverified,
    jwt_sign as sign,
    jwt_verify as verify,
    jwt_verify_jws as verify_jws,
)

__all__ = ["Verifier", "decode_unverified", "sign", "verify", "verify_jws"]
