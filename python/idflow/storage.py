"""Storage for ``SessionManager``: the protocol an app implements (keyring,
encrypted file, database row) and an in-memory double for tests."""

from __future__ import annotations

from typing import Optional, Protocol


class SessionStorage(Protocol):
    """Keeps the session text between runs. Treat it as a secret: it holds
    the refresh token. Called from a worker thread, never concurrently."""

    def load(self) -> Optional[str]: ...
    def save(self, session: str) -> None: ...
    def clear(self) -> None: ...


class MemoryStorage:
    """A ``SessionStorage`` in memory."""

    def __init__(self, value: Optional[str] = None) -> None:
        self.value = value

    def load(self) -> Optional[str]:
        return self.value

    def save(self, session: str) -> None:
        self.value = session

    def clear(self) -> None:
        self.value = None
