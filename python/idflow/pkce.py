"""PKCE (RFC 7636): code verifiers, S256 challenges and constant-time verification.

``plain`` is refused unless ``allow_plain=True``; malformed verifiers raise
``OAuthError`` with code ``invalid_request``.
"""

from ._idflow import (
    PKCE_MAX_VERIFIER_LEN as MAX_VERIFIER_LEN,
    PKCE_MIN_VERIFIER_LEN as MIN_VERIFIER_LEN,
    PkcePair,
    pkce_challenge as challenge,
    pkce_generate as generate,
    pkce_generate_verifier as generate_verifier,
    pkce_verify as verify,
)

__all__ = ["MAX_VERIFIER_LEN", "MIN_VERIFIER_LEN", "PkcePair", "challenge", "generate", "generate_verifier", "verify"]
