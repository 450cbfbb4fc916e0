"""Coordinator passwords: scrypt hashes (hashlib, OpenSSL) in a self-describing text form.

A hash reads `scrypt$N$r$p$salt$key` (salt and key in unpadded base64), so the cost can be
raised later without invalidating the hashes already stored: `verify` uses the parameters
written in the hash. Hashing runs where the password is typed (`shiftctl user add`), so the
password itself never crosses the control socket; the daemon only verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

__all__ = ["MIN_LENGTH", "PasswordError", "hash_password", "valid_hash", "verify"]

MIN_LENGTH = 12
MAX_LENGTH = 1024
# N=2^15, r=8: 32 MiB and about 0.1 s per hash here: slow for a guesser, fine for a sign-in.
COST_N, COST_R, COST_P = 2**15, 8, 1
_KEY_BYTES = 32
_SALT_BYTES = 16
_HASH_RE = re.compile(
    r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{32,88})"
)


class PasswordError(ValueError):
    """A password that may not be used (too short, too long); the message says why."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r, dklen=_KEY_BYTES
    )


def hash_password(password: str, *, n: int = COST_N, r: int = COST_R, p: int = COST_P) -> str:
    """The stored form of `password` with a fresh salt.

    Raises PasswordError for a password shorter than MIN_LENGTH or longer than MAX_LENGTH
    characters.
    """
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password has at most {MAX_LENGTH} characters")
    salt = os.urandom(_SALT_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(_derive(password, salt, n, r, p))}"


def valid_hash(text: str) -> bool:
    """Whether `text` is a hash `hash_password` could have written (with sane parameters)."""
    match = _HASH_RE.fullmatch(text)
    if match is None:
        return False
    n, r, p = (int(match[i]) for i in (1, 2, 3))
    return 2**10 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16


_DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


def verify(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored` (constant-time compare). With `stored` None (no
    such account) the same work is done against a dummy hash, so an answer's timing does not
    tell which accounts exist. Never raises for a malformed hash: it does not match."""
    target = stored if stored is not None and valid_hash(stored) else _DUMMY
    _, n, r, p, salt, key = target.split("$")
    try:
        derived = _derive(password[:MAX_LENGTH], _unb64(salt), int(n), int(r), int(p))
    except (ValueError, MemoryError):
        return False
    return stored is not None and target is stored and hmac.compare_digest(derived, _unb64(key))
