"""The compliance keywords of a text (STOP, START, HELP, CANCEL, RELEASE, LIST...).

A keyword is read only when it is the whole message, trimmed, case-folded and stripped of
surrounding punctuation; what each one does is the router's (`shiftd.inbound.router`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Keyword(Enum):
    OPT_OUT = "opt_out"
    CANCEL = "cancel"
    """A bare CANCEL: a release from a holder of an upcoming shift, else an opt-out."""
    RELEASE = "release"
    OPT_IN = "opt_in"
    HELP = "help"
    LIST = "list"
    """LIST / LISTA, optionally with a page number: her open offers, a page at a time."""


@dataclass(frozen=True, slots=True)
class ParsedKeyword:
    keyword: Keyword
    word: str
    """The keyword as written, case-folded ("stop", "unsubscribe"): stored with an opt-out."""
    code: int | None = None


_OPT_OUT_WORDS = frozenset({"stop", "stopall", "unsubscribe", "end", "quit"})
_OPT_IN_WORDS = frozenset({"start", "unstop"})
_HELP_WORDS = frozenset({"help", "info"})
_RELEASE_WORDS = frozenset({"cancel", "release", "drop"})
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_RELEASE = re.compile(r"(cancel|release|drop)\s+#?(\d{1,4})")
_LIST = re.compile(r"(list|lista)(?:\s+#?(\d{1,4}))?")
_LONGEST = 32  # no keyword message is longer than this once trimmed


def parse_keyword(body: str) -> ParsedKeyword | None:
    """The compliance or release keyword `body` is, or None (see the module docstring)."""
    text = body.strip()
    if len(text) > 4 * _LONGEST:
        return None
    text = _EDGES.sub("", text.casefold())
    if not text or len(text) > _LONGEST:
        return None
    if text in _OPT_OUT_WORDS:
        return ParsedKeyword(Keyword.OPT_OUT, text)
    if text == "cancel":
        return ParsedKeyword(Keyword.CANCEL, text)
    if text in _RELEASE_WORDS:
        return ParsedKeyword(Keyword.RELEASE, text)
    if text in _OPT_IN_WORDS:
        return ParsedKeyword(Keyword.OPT_IN, text)
    if text in _HELP_WORDS:
        return ParsedKeyword(Keyword.HELP, text)
    match = _RELEASE.fullmatch(text)
    if match is not None:
        return ParsedKeyword(Keyword.RELEASE, match.group(1), int(match.group(2)))
    match = _LIST.fullmatch(text)
    if match is not None:
        page = int(match.group(2)) if match.group(2) else None
        return ParsedKeyword(Keyword.LIST, match.group(1), page)
    return None
