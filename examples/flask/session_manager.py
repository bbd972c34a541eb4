"""A signed-in session in a desktop or command-line app: the user signs in
once in the browser, and the refresh token is kept in a file only the user
can read (use the OS keyring where there is one)."""

import os
import pathlib
from typing import Any, Callable, Optional

import idflow


class FileStorage:
    """idflow.SessionStorage in a 0600 file, replaced atomically."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def load(self) -> Optional[str]:
        return self.path.read_text() if self.path.exists() else None

    def save(self, session: str) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(session)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def session_manager(discovery_url: str, client_id: str, redirect_uri: str, path: pathlib.Path) -> tuple[idflow.OidcClient, idflow.SessionManager]:
    client = idflow.OidcClient.discover(
        discovery_url, client_id=client_id, redirect_uri=redirect_uri, scopes=["openid", "email", "offline_access"]
    )
    return client, idflow.SessionManager(client, FileStorage(path))


def sign_in(manager: idflow.SessionManager, client: idflow.OidcClient, browser: Callable[[str], str]) -> dict[str, Any]:
    """``browser`` opens the URL and returns the redirect it ends on (your
    loopback redirect URI receives it)."""
    request = client.authorization_request()
    return manager.complete(browser(request["url"]), request)


def call_api(manager: idflow.SessionManager) -> str:
    """The access token for an API call: refreshed first when it is due.
    ``OAuthError`` with code ``invalid_grant`` means the user was signed out."""
    return f"Bearer {manager.access_token()}"
