"""Signed-in coordinators and the brakes on guessing their passwords.

Sessions live in the daemon's memory: a restart signs everybody out (the page sends them to
the sign-in form), which is the price of never writing to the store on every page view. A
session is known by a random 256-bit id held in an HttpOnly cookie; only its SHA-256 is kept,
so a memory dump does not hand out live sessions. Each session has its own CSRF token, sent
back by every form and every script request that changes something. A session unused for
`idle` ends; so do all of an account's sessions when the account is removed or its password
changes.

Sign-in attempts are limited two ways, both counted in memory with the one clock:
`max_failures` wrong passwords in a row lock the *account* for `lockout` (whoever tries), and
a client address gets at most `per_address` attempts per `lockout` window whatever the
account names it tries (so spraying many names from one place is slowed too).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["Session", "SessionStore", "SignInLimiter"]

MAX_SESSIONS = 10_000


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


@dataclass(slots=True)
class Session:
    user: str
    csrf: str
    created_at: datetime
    last_seen: datetime

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "replace"), self.csrf.encode("ascii")
        )


class SessionStore:
    """Sessions by cookie value; see the module docstring."""

    def __init__(self, now: Callable[[], datetime], idle: timedelta) -> None:
        self._now = now
        self.idle = idle
        self._sessions: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, user: str) -> tuple[str, Session]:
        """A new session for `user`: (cookie value, session). The oldest sessions give way
        when MAX_SESSIONS are open."""
        now = self._now()
        self._prune(now)
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        token = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), now, now)
        self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The live session the cookie names, or None (unknown, or idle too long: then it
        ends). `touch` counts this as use (a page or an action; not a live stream)."""
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._now()
        if now - session.last_seen >= self.idle:
            del self._sessions[key]
            return None
        if touch:
            session.last_seen = now
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def close_user(self, user: str) -> int:
        """End every session of `user`; how many there were."""
        keys = [k for k, s in self._sessions.items() if s.user == user]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def _prune(self, now: datetime) -> None:
        stale = [k for k, s in self._sessions.items() if now - s.last_seen >= self.idle]
        for key in stale:
            del self._sessions[key]


@dataclass(slots=True)
class _Account:
    failures: int = 0
    locked_until: datetime | None = None


@dataclass
class SignInLimiter:
    """Lockout per account and attempt budget per address; see the module docstring."""

    now: Callable[[], datetime]
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    per_address: int = 30
    _accounts: dict[str, _Account] = field(default_factory=dict)
    _addresses: dict[str, deque[datetime]] = field(default_factory=dict)

    def refused_for(self, user: str, address: str) -> timedelta | None:
        """How long until `user` may be tried again from `address`, or None if an attempt
        may be made now. Counts the attempt against the address when it is allowed."""
        now = self.now()
        account = self._accounts.get(user)
        if account is not None and account.locked_until is not None:
            if now < account.locked_until:
                return account.locked_until - now
            account.locked_until, account.failures = None, 0
        recent = self._addresses.setdefault(address, deque())
        while recent and now - recent[0] >= self.lockout:
            recent.popleft()
        if len(recent) >= self.per_address:
            return recent[0] + self.lockout - now
        recent.append(now)
        if len(self._addresses) > MAX_SESSIONS:  # bounded: forget the quietest addresses
            for key in [k for k, v in self._addresses.items() if not v][:1000]:
                del self._addresses[key]
        return None

    def failed(self, user: str) -> bool:
        """Count a wrong password for `user`; True if that locked the account."""
        if len(self._accounts) > MAX_SESSIONS and user not in self._accounts:
            self._accounts.clear()  # bounded: names that do not exist are tried too
        account = self._accounts.setdefault(user, _Account())
        account.failures += 1
        if account.failures >= self.max_failures:
            account.locked_until = self.now() + self.lockout
            return True
        return False

    def succeeded(self, user: str) -> None:
        self._accounts.pop(user, None)
