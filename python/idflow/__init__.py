"""idflow: an identity SDK on one Rust core (PKCE, JOSE/JWT, OpenID Connect, flows).

Errors are ``IdflowError`` subclasses with a stable ``.code`` (see ``ERROR_CODES``).
"""

from ._idflow import (
    ALGORITHMS,
    ERROR_CODES,
    ConfigError,
    FlowEngine,
    FlowError,
    HttpResponse,
    IdflowError,
    InternalError,
    JwksCache,
    Key,
    KeySet,
    NetworkError,
    OAuthError,
    OAuthStart,
    OidcClient,
    PkcePair,
    Provider,
    Providers,
    SessionManager,
    StorageError,
    TokenError,
    __version__,
    validate_flow,
)
from . import jwt, password, pkce
from .storage import MemoryStorage, SessionStorage

__all__ = [
    "ALGORITHMS",
    "ERROR_CODES",
    "ConfigError",
    "FlowEngine",
    "FlowError",
    "HttpResponse",
    "MemoryStorage",
    "IdflowError",
    "InternalError",
    "JwksCache",
    "Key",
    "KeySet",
    "NetworkError",
    "OAuthError",
    "OAuthStart",
    "OidcClient",
    "PkcePair",
    "Provider",
    "Providers",
    "SessionManager",
    "SessionStorage",
    "StorageError",
    "TokenError",
    "__version__",
    "jwt",
    "password",
    "pkce",
    "validate_flow",
]
