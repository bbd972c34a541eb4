"""Password hashes as idflow writes and reads them.

``hash`` makes an Argon2id PHC string (OWASP's cost by default: 19 MiB, 2
passes, 1 lane; a fresh salt each time), the form a project's users are
stored in. ``verify`` checks a password against an Argon2, bcrypt, PBKDF2
(PHC) or Django ``pbkdf2_sha256`` hash in constant time; a malformed hash
raises ``OAuthError`` with code ``invalid_request``. A ``FlowEngine`` manages
users' passwords: ``set_password``, ``import_password_hash``,
``remove_password``, ``has_password`` and ``unlock_login_id``.
"""

from ._idflow import password_hash as hash, password_verify as verify

__all__ = ["hash", "verify"]
