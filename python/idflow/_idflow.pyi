import os
from typing import Any, Callable, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union, final

from .storage import SessionStorage as _SessionStorage

__all__ = ["ALGORITHMS", "ConfigError", "FlowEngine", "ERROR_CODES", "FlowError", "HttpResponse", "IdflowError", "InternalError", "JwksCache", "Key", "KeySet", "NetworkError", "OAuthError", "OAuthStart", "OidcClient", "PKCE_MAX_VERIFIER_LEN", "PKCE_MIN_VERIFIER_LEN", "PkcePair", "Provider", "SessionManager", "StorageError", "TokenError", "Verifier", "__version__", "_debug_panic", "_debug_raise", "jwt_decode_unverified", "jwt_sign", "jwt_verify", "jwt_verify_jws", "pkce_challenge", "pkce_generate", "pkce_generate_verifier", "password_hash", "password_verify", "pkce_verify", "validate_flow"]

__version__: str
ERROR_CODES: list[str]
ALGORITHMS: list[str]
PKCE_MIN_VERIFIER_LEN: int
PKCE_MAX_VERIFIER_LEN: int

class IdflowError(Exception):
    code: str
    message: str

class OAuthError(IdflowError): ...
class TokenError(IdflowError): ...
class FlowError(IdflowError): ...
class ConfigError(IdflowError): ...
class NetworkError(IdflowError): ...
class StorageError(IdflowError): ...
class InternalError(IdflowError): ...

@final
class PkcePair:
    @property
    def verifier(self) -> str: ...
    @property
    def challenge(self) -> str: ...
    @property
    def method(self) -> str: ...

def pkce_generate(length: Optional[int] = None) -> PkcePair: ...
def pkce_generate_verifier(length: Optional[int] = None) -> str: ...
def pkce_challenge(verifier: str, method: str = "S256", allow_plain: bool = False) -> str: ...
def pkce_verify(verifier: str, challenge: str, method: str = "S256", allow_plain: bool = False) -> bool: ...

@final
class Key:
    @staticmethod
    def generate(alg: str, rsa_bits: Optional[int] = None) -> Key: ...
    @staticmethod
    def from_jwk(jwk: Union[Mapping[str, Any], str]) -> Key: ...
    @staticmethod
    def from_pem(pem: str) -> Key: ...
    @staticmethod
    def from_secret(secret: Union[bytes, str]) -> Key: ...
    @property
    def kid(self) -> str: ...
    @property
    def alg(self) -> Optional[str]: ...
    @property
    def kty(self) -> str: ...
    @property
    def curve(self) -> Optional[str]: ...
    @property
    def has_private(self) -> bool: ...
    def sign_bytes(self, alg: str, data: bytes) -> bytes: ...
    def verify_bytes(self, alg: str, data: bytes, signature: bytes) -> None: ...
    def thumbprint(self) -> str: ...
    def with_kid(self, kid: str) -> Key: ...
    def public_key(self) -> Key: ...
    def to_jwk(self, private: bool = False) -> dict[str, Any]: ...
    def to_pem(self, private: bool = False) -> str: ...

@final
class KeySet:
    def __new__(cls, keys: Sequence[Key]) -> KeySet: ...
    @staticmethod
    def from_jwks(jwks: Union[Mapping[str, Any], str]) -> KeySet: ...
    def __len__(self) -> int: ...
    @property
    def kids(self) -> list[str]: ...
    def get(self, kid: str) -> Optional[Key]: ...
    def to_jwks(self) -> dict[str, Any]: ...

def jwt_sign(claims: Mapping[str, Any], key: Key, header: Optional[Mapping[str, Any]] = None) -> str: ...
def jwt_verify(
    token: str,
    key: Union[Key, KeySet],
    *,
    algorithms: Sequence[str],
    issuer: Optional[str] = None,
    audience: Union[str, Sequence[str], None] = None,
    leeway: int = 60,
    required_claims: Optional[Sequence[str]] = None,
    max_token_size: int = 16384,
    now: Optional[int] = None,
) -> dict[str, Any]: ...
@final
class Verifier:
    def __new__(
        cls,
        key: Union[Key, KeySet],
        *,
        algorithms: Sequence[str],
        issuer: Optional[str] = None,
        audience: Union[str, Sequence[str], None] = None,
        leeway: int = 60,
        required_claims: Optional[Sequence[str]] = None,
        max_token_size: int = 16384,
        now: Optional[int] = None,
    ) -> Verifier: ...
    def verify(self, token: str) -> dict[str, Any]: ...

def jwt_verify_jws(
    token: str, key: Union[Key, KeySet], *, algorithms: Sequence[str], max_token_size: int = 16384
) -> Tuple[dict[str, Any], bytes]: ...
def jwt_decode_unverified(token: str) -> dict[str, Any]: ...

@final
class JwksCache:
    def __new__(
        cls,
        url: str,
        *,
        timeout: float = 5.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        default_ttl: float = 600.0,
        refetch_cooldown: float = 30.0,
        max_response_bytes: int = 262144,
    ) -> JwksCache: ...
    @property
    def url(self) -> str: ...
    def key_set(self) -> KeySet: ...
    async def key_set_async(self) -> KeySet: ...
    def refresh(self) -> KeySet: ...
    async def refresh_async(self) -> KeySet: ...
    def verify(
        self,
        token: str,
        *,
        algorithms: Sequence[str],
        issuer: Optional[str] = None,
        audience: Union[str, Sequence[str], None] = None,
        leeway: int = 60,
        required_claims: Optional[Sequence[str]] = None,
        max_token_size: int = 16384,
        now: Optional[int] = None,
    ) -> dict[str, Any]: ...
    async def verify_async(
        self,
        token: str,
        *,
        algorithms: Sequence[str],
        issuer: Optional[str] = None,
        audience: Union[str, Sequence[str], None] = None,
        leeway: int = 60,
        required_claims: Optional[Sequence[str]] = None,
        max_token_size: int = 16384,
        now: Optional[int] = None,
    ) -> dict[str, Any]: ...

def _debug_panic() -> None: ...
def _debug_raise(code: str) -> None: ...

class _FlowProblem(TypedDict):
    step: Optional[str]
    field: str
    message: str

def password_hash(password: str, *, memory_kib: int = 19456, iterations: int = 2, parallelism: int = 1) -> str: ...
def password_verify(password: str, hash: str) -> bool: ...
def validate_flow(text: str) -> list[_FlowProblem]: ...

@final
class FlowEngine:
    def __new__(cls, project: str, *, key: Key, base_dir: str = ".", database: Optional[str] = None) -> FlowEngine: ...
    @staticmethod
    def from_file(path: str, *, key: Key, database: Optional[str] = None) -> FlowEngine: ...
    def start(
        self, flow_id: str, input: Optional[Mapping[str, Any]] = None, request: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]: ...
    async def start_async(
        self, flow_id: str, input: Optional[Mapping[str, Any]] = None, request: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]: ...
    def next(
        self, execution_id: str, step_id: str, interaction_id: str, input: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]: ...
    async def next_async(
        self, execution_id: str, step_id: str, interaction_id: str, input: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]: ...
    def test_connector(
        self, connector_id: str, method: str = "GET", endpoint: str = "", body: Any = None
    ) -> dict[str, Any]: ...
    def create_user(self, login_id: str, fields: Optional[Mapping[str, Any]] = None) -> dict[str, Any]: ...
    def get_user(self, user_id: str) -> dict[str, Any]: ...
    def update_user(self, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]: ...
    def delete_user(self, user_id: str) -> None: ...
    def set_password(self, user_id: str, password: str) -> None: ...
    def import_password_hash(self, user_id: str, hash: str) -> None: ...
    def remove_password(self, user_id: str) -> None: ...
    def has_password(self, user_id: str) -> bool: ...
    def sign_out_everywhere(self, user_id: str) -> None: ...
    def unlock_login_id(self, login_id: str) -> None: ...
    def search_users(
        self, text: Optional[str] = None, status: Optional[str] = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]: ...

_Headers = Union[Mapping[str, str], Sequence[Tuple[str, str]]]

@final
class HttpResponse:
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[Tuple[str, str]]: ...
    @property
    def body(self) -> bytes: ...
    def header(self, name: str) -> Optional[str]: ...

@final
class OAuthStart:
    @property
    def url(self) -> str: ...
    @property
    def code_verifier(self) -> str: ...

@final
class Provider:
    def __new__(
        cls, project: str, *, base_dir: str = ".", database: Optional[str] = None, base_url: Optional[str] = None
    ) -> Provider: ...
    @staticmethod
    def from_file(path: str, *, database: Optional[str] = None, base_url: Optional[str] = None) -> Provider: ...
    @property
    def issuer(self) -> str: ...
    @property
    def engine(self) -> FlowEngine: ...
    def handle(
        self, method: str, url: str, headers: Optional[_Headers] = None, body: Union[bytes, str, None] = None, *, peer: Optional[str] = None
    ) -> HttpResponse: ...
    async def handle_async(
        self, method: str, url: str, headers: Optional[_Headers] = None, body: Union[bytes, str, None] = None, *, peer: Optional[str] = None
    ) -> HttpResponse: ...
    def oauth_authorize(
        self, provider: str, *, redirect_url: Optional[str] = None, prompt: Optional[Sequence[str]] = None, login_hint: Optional[str] = None
    ) -> OAuthStart: ...
    async def oauth_authorize_async(
        self, provider: str, *, redirect_url: Optional[str] = None, prompt: Optional[Sequence[str]] = None, login_hint: Optional[str] = None
    ) -> OAuthStart: ...
    def oauth_exchange(self, code: str, code_verifier: str) -> dict[str, Any]: ...
    def provider_token(self, user_id: str, provider: str) -> dict[str, Any]: ...
    async def provider_token_async(self, user_id: str, provider: str) -> dict[str, Any]: ...
    def discovery(self) -> dict[str, Any]: ...
    def applications(self) -> list[dict[str, Any]]: ...
    def access_keys(self) -> list[dict[str, Any]]: ...

class _AuthorizationRequest(TypedDict):
    url: str
    state: str
    nonce: str
    code_verifier: Optional[str]
    redirect_uri: str

class _Callback(TypedDict):
    code: Optional[str]
    id_token: Optional[str]
    state: str

@final
class OidcClient:
    def __new__(
        cls,
        *,
        client_id: str,
        redirect_uri: str,
        endpoints: Mapping[str, str],
        client_secret: Optional[str] = None,
        client_auth: Optional[str] = None,
        private_key: Optional[Key] = None,
        scopes: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> OidcClient: ...
    @staticmethod
    def discover(
        discovery_url: str,
        *,
        client_id: str,
        redirect_uri: str,
        issuer: Optional[str] = None,
        client_secret: Optional[str] = None,
        client_auth: Optional[str] = None,
        private_key: Optional[Key] = None,
        scopes: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> OidcClient: ...
    @staticmethod
    async def discover_async(
        discovery_url: str,
        *,
        client_id: str,
        redirect_uri: str,
        issuer: Optional[str] = None,
        client_secret: Optional[str] = None,
        client_auth: Optional[str] = None,
        private_key: Optional[Key] = None,
        scopes: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> OidcClient: ...
    @property
    def endpoints(self) -> dict[str, str]: ...
    def authorization_request(
        self,
        *,
        scopes: Optional[Sequence[str]] = None,
        prompt: Union[str, Sequence[str], None] = None,
        login_hint: Optional[str] = None,
        max_age: Optional[int] = None,
        params: Optional[Mapping[str, str]] = None,
        response_type: str = "code",
        redirect_uri: Optional[str] = None,
    ) -> _AuthorizationRequest: ...
    def parse_callback(self, callback: str, expected_state: str) -> _Callback: ...
    def end_session_url(
        self, id_token_hint: Optional[str] = None, post_logout_redirect_uri: Optional[str] = None, state: Optional[str] = None
    ) -> str: ...
    def complete_callback(
        self, callback: str, request: Mapping[str, Any], token_status: int, token_body: bytes, keys: KeySet
    ) -> dict[str, Any]: ...
    def handle_callback(self, callback: str, request: Mapping[str, Any]) -> dict[str, Any]: ...
    async def handle_callback_async(self, callback: str, request: Mapping[str, Any]) -> dict[str, Any]: ...
    def exchange_code(
        self,
        code: str,
        *,
        code_verifier: Optional[str] = None,
        nonce: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        params: Optional[Mapping[str, str]] = None,
    ) -> dict[str, Any]: ...
    async def exchange_code_async(
        self,
        code: str,
        *,
        code_verifier: Optional[str] = None,
        nonce: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        params: Optional[Mapping[str, str]] = None,
    ) -> dict[str, Any]: ...
    def validate_id_token(self, id_token: str, *, nonce: Optional[str] = None, access_token: Optional[str] = None) -> dict[str, Any]: ...
    async def validate_id_token_async(
        self, id_token: str, *, nonce: Optional[str] = None, access_token: Optional[str] = None
    ) -> dict[str, Any]: ...
    def userinfo(self, access_token: str) -> dict[str, Any]: ...
    async def userinfo_async(self, access_token: str) -> dict[str, Any]: ...
    def refresh(self, refresh_token: str, *, scopes: Optional[Sequence[str]] = None) -> dict[str, Any]: ...
    async def refresh_async(self, refresh_token: str, *, scopes: Optional[Sequence[str]] = None) -> dict[str, Any]: ...
    def revoke(self, token: str, token_type_hint: Optional[str] = None) -> None: ...
    async def revoke_async(self, token: str, token_type_hint: Optional[str] = None) -> None: ...

class _Session(TypedDict, total=False):
    access_token: str
    token_type: str
    refresh_token: str
    id_token: str
    scope: str
    expires_at: int
    claims: dict[str, Any]

_SessionStatus = Literal["signed_out", "valid", "expired", "invalid"]

class _SessionEvent(TypedDict, total=False):
    """``type`` is ``"refreshed"`` (with ``session``), ``"signedOut"`` (with
    ``reason``: ``"user"``, ``"refresh_refused"`` or ``"elsewhere"``, and
    ``message``) or ``"storageFailed"`` (with ``code`` and ``message``)."""

    type: Literal["refreshed", "signedOut", "storageFailed"]
    session: _Session
    reason: Literal["user", "refresh_refused", "elsewhere"]
    code: str
    message: str

@final
class SessionManager:
    """A signed-in user's session: validity checked against the provider's
    JWKS, refresh before expiry (one refresh at a time across managers of
    the same client, and across processes with ``lock_path``),
    ``invalid_grant`` signs out, persisted through ``storage``."""

    def __new__(
        cls,
        client: OidcClient,
        storage: _SessionStorage,
        *,
        refresh_margin: Optional[float] = None,
        revoke_on_sign_out: Optional[bool] = None,
        pending_ttl: Optional[float] = None,
        lock_path: Union[str, "os.PathLike[str]", None] = None,
        lock_timeout: Optional[float] = None,
    ) -> SessionManager: ...
    def begin(
        self,
        *,
        scopes: Optional[Sequence[str]] = None,
        prompt: Union[str, Sequence[str], None] = None,
        login_hint: Optional[str] = None,
        max_age: Optional[int] = None,
        params: Optional[Mapping[str, str]] = None,
        redirect_uri: Optional[str] = None,
    ) -> str:
        """Starts a sign-in: the URL to open. The pending request is kept in
        the storage, so ``complete(callback)`` works in another process."""
    async def begin_async(
        self,
        *,
        scopes: Optional[Sequence[str]] = None,
        prompt: Union[str, Sequence[str], None] = None,
        login_hint: Optional[str] = None,
        max_age: Optional[int] = None,
        params: Optional[Mapping[str, str]] = None,
        redirect_uri: Optional[str] = None,
    ) -> str: ...
    def complete(self, callback: str, request: Optional[Mapping[str, Any]] = None) -> _Session:
        """Without ``request``, the pending request ``begin`` stored is used
        once (none pending, another state or too late: ``InvalidRequest``)."""
    async def complete_async(self, callback: str, request: Optional[Mapping[str, Any]] = None) -> _Session: ...
    def set_listener(self, listener: Optional[Callable[[_SessionEvent], None]]) -> None:
        """Called on the thread of the call that caused the event; do not
        call this manager's blocking methods from it."""
    def sign_in(self, tokens: Mapping[str, Any]) -> _Session: ...
    async def sign_in_async(self, tokens: Mapping[str, Any]) -> _Session: ...
    def session(self) -> Optional[_Session]: ...
    async def session_async(self) -> Optional[_Session]: ...
    def status(self) -> _SessionStatus: ...
    async def status_async(self) -> _SessionStatus: ...
    def is_valid(self) -> bool: ...
    async def is_valid_async(self) -> bool: ...
    def access_token(self) -> str: ...
    async def access_token_async(self) -> str: ...
    def refresh(self) -> _Session: ...
    async def refresh_async(self) -> _Session: ...
    def sign_out(self) -> None: ...
    async def sign_out_async(self) -> None: ...
