"""Roles as an agency writes them: ` rn`, `Rn` and `RN` are one role.

With a configured list (`roles`), a role is matched case-insensitively, after trimming and
collapsing inner spaces, and takes the list's spelling; a role not on it is an error. Without
a list any role is accepted and written in upper case, so `rn` caregivers are offered `RN`
shifts all the same.
"""

from __future__ import annotations

from collections.abc import Sequence


class UnknownRole(ValueError):
    """A role that is not on the configured list."""


class Roles:
    def __init__(self, known: Sequence[str] = ()) -> None:
        self._known = tuple(known)
        self._by_key = {_key(r): " ".join(r.split()) for r in known}

    def normalize(self, raw: str) -> str:
        """The canonical spelling of `raw`; UnknownRole if a list is configured and lacks it."""
        text = " ".join(raw.split())
        if not self._by_key:
            return text.upper()
        try:
            return self._by_key[_key(text)]
        except KeyError:
            known = ", ".join(self._known)
            raise UnknownRole(f"unknown role {raw!r} (roles: {known})") from None


def _key(role: str) -> str:
    return " ".join(role.split()).casefold()
