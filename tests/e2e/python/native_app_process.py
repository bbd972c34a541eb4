"""A native app's process, for test_native_app.py: the app is started,
does one thing with its session over a file the OS keeps between runs, and
goes away (or is killed). Each command prints one JSON line on stdout.

    python native_app_process.py begin DISCOVERY STORAGE
    python native_app_process.py complete DISCOVERY STORAGE CALLBACK
    python native_app_process.py refresh-killed DISCOVERY REFRESH_TOKEN

`refresh-killed` sends the refresh itself (`OidcClient.refresh`), prints the
provider's reply and kills itself with SIGKILL: an app killed after the
provider answered and before it saved.

`race_worker` is a long-lived app instance for the refresh race (started by
the test with multiprocessing's spawn context, so it is a fresh OS process
with its own copy of idflow): it refreshes whenever told, in step with the
other instance (a shared barrier).

Errors print `{"error": {"code", "message"}}` and exit with status 3.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import idflow

NATIVE_CLIENT = "native"
NATIVE_REDIRECT = "com.example.app:/oauth2redirect"
NATIVE_SCOPES = ["openid", "email", "offline_access"]


class FileStorage:
    """A SessionStorage in one file: JSON text, written atomically (a temp
    file in the same directory, then os.replace), mode 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def save(self, session: str) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(session)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def native_client(discovery: str) -> idflow.OidcClient:
    return idflow.OidcClient.discover(discovery, client_id=NATIVE_CLIENT, redirect_uri=NATIVE_REDIRECT, scopes=NATIVE_SCOPES)


def _print(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    command, discovery, *rest = argv
    client = native_client(discovery)
    try:
        if command == "begin":
            (storage,) = rest
            manager = idflow.SessionManager(client, FileStorage(storage))
            _print({"url": manager.begin(), "pid": os.getpid()})
        elif command == "complete":
            storage, callback = rest
            manager = idflow.SessionManager(client, FileStorage(storage))
            session = manager.complete(callback)
            _print({"session": session, "access_token": manager.access_token(), "pid": os.getpid()})
        elif command == "refresh-killed":
            (refresh_token,) = rest
            _print({"tokens": client.refresh(refresh_token), "pid": os.getpid()})
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            raise SystemExit(f"unknown command {command!r}")
    except idflow.IdflowError as e:
        _print({"error": {"code": e.code, "message": e.message}})
        return 3
    return 0


def race_worker(name: str, discovery: str, storage: str, lock_path: str, barrier, conn) -> None:
    """One app instance over the shared file and lock. Sends
    `("ready", session)`, then for each `"refresh"` it receives: waits at
    the barrier with the other instance, calls `refresh()` and sends
    `{"ok", "session" | "error", "start", "end", "events"}` (times from
    the system-wide monotonic clock). `"stop"` ends it."""
    client = native_client(discovery)
    manager = idflow.SessionManager(client, FileStorage(storage), lock_path=lock_path)
    events: list[dict] = []
    manager.set_listener(events.append)
    # The app loads its session when it starts, as an app does on launch.
    conn.send(("ready", manager.session()))
    while True:
        command = conn.recv()
        if command == "stop":
            break
        assert command == "refresh", command
        events.clear()
        barrier.wait(timeout=60)
        start = time.monotonic()
        try:
            out = {"ok": True, "session": manager.refresh()}
        except idflow.IdflowError as e:
            out = {"ok": False, "error": {"code": e.code, "message": e.message}}
        out.update(start=start, end=time.monotonic(), events=list(events), name=name)
        conn.send(out)
    conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
