"""Who is asking: bearer tokens, basic auth and signed session cookies; pure.

Every credential comes from configuration (its secrets from the environment) and is
compared in constant time. A browser signs in once on the login page and gets a session
cookie (HttpOnly, SameSite=Strict, signed with a key of this process); API clients send a
bearer token. The name of the token or the user is who the incident timeline says acted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SESSION_COOKIE = "aiops_session"


class Authenticator:
    """Checks credentials and issues session cookies.

    Parameters
    ----------
    tokens
        Token name -> bearer token.
    users
        User name -> password (login page and basic auth).
    session_s
        How long a session cookie is good for.
    key
        Signing key of session cookies (random per process when not given: a restarted
        console asks people to sign in again).
    """

    def __init__(
        self,
        tokens: Mapping[str, str],
        users: Mapping[str, str],
        *,
        session_s: float = 12 * 3600.0,
        key: bytes | None = None,
    ) -> None:
        self._tokens = {name: token.encode() for name, token in tokens.items() if token}
        self._users = {name: password.encode() for name, password in users.items() if password}
        self.session_s = session_s
        self._key = key or secrets.token_bytes(32)

    @property
    def configured(self) -> bool:
        """True when at least one credential is configured."""
        return bool(self._tokens or self._users)

    def bearer(self, token: str) -> str | None:
        """The name of the token, or None."""
        given = token.encode()
        found = None
        for name, expected in self._tokens.items():
            if hmac.compare_digest(given, expected):
                found = name
        return found

    def password(self, user: str, password: str) -> str | None:
        """The user, if the password is theirs."""
        expected = self._users.get(user)
        ok = hmac.compare_digest(password.encode(), expected if expected else b"\0" * 32)
        return user if ok and expected is not None else None

    def header(self, value: str) -> str | None:
        """Who an ``Authorization`` header names (Bearer or Basic), or None."""
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() == "bearer":
            return self.bearer(credentials.strip())
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            user, sep, password = decoded.partition(":")
            return self.password(user, password) if sep else None
        return None

    def issue(self, user: str, *, now: float | None = None) -> str:
        """A session cookie value for ``user``."""
        expires = int((now if now is not None else time.time()) + self.session_s)
        payload = f"{user}|{expires}"
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        return base64.urlsafe_b64encode(f"{payload}|{mac}".encode()).decode()

    def session(self, cookie: str, *, now: float | None = None) -> str | None:
        """The user of a session cookie that this process signed and that has not expired."""
        try:
            user, expires, mac = base64.urlsafe_b64decode(cookie.encode()).decode().rsplit("|", 2)
        except (ValueError, UnicodeDecodeError):
            return None
        expected = hmac.new(self._key, f"{user}|{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        if not expires.isdigit() or int(expires) < (now if now is not None else time.time()):
            return None
        return user
