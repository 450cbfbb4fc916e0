"""What a caregiver's free-text reply means.

The classifier is pluggable: config names any object with `classify(body, channel)` by its
import path (`classifier: "package.module:Name"`).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .models import Channel


class Intent(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Classified:
    intent: Intent
    code: int | None = None  # the offer code in "YES 12", if any


class Classifier(Protocol):
    def classify(self, body: str, channel: Channel) -> Classified: ...


_WORD = re.compile(r"[a-z]+|[0-9]+")


class DefaultClassifier:
    """Accepts replies starting with yes/accept/y, declines no/decline/n; else UNKNOWN.

    Case and surrounding space and punctuation are ignored ("Yes!", " no thanks").
    A number right after the first word is the offer code ("YES 12"). On a call, the
    keypad digits 1 and 2 mean accept and decline.
    """

    ACCEPT_WORDS = frozenset({"yes", "y", "accept"})
    DECLINE_WORDS = frozenset({"no", "n", "decline"})

    def classify(self, body: str, channel: Channel) -> Classified:
        words = _WORD.findall(body.lower()[:500])
        if not words:
            return Classified(Intent.UNKNOWN)
        first, rest = words[0], words[1:]
        code = int(rest[0]) if rest and rest[0].isdigit() and len(rest[0]) <= 4 else None
        if first in self.ACCEPT_WORDS:
            return Classified(Intent.ACCEPT, code)
        if first in self.DECLINE_WORDS:
            return Classified(Intent.DECLINE, code)
        if channel is Channel.VOICE and first in ("1", "2"):
            return Classified(Intent.ACCEPT if first == "1" else Intent.DECLINE)
        return Classified(Intent.UNKNOWN)


def load_classifier(path: str) -> Classifier:
    """Instantiate the classifier named `module:Attr`; raises ValueError naming the problem."""
    module_name, _, attr = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot load classifier {path!r}: {exc}") from exc
    try:
        instance = target() if isinstance(target, type) else target
    except Exception as exc:  # a class that needs arguments, or whose __init__ fails
        raise ValueError(f"cannot load classifier {path!r}: {exc}") from exc
    if not callable(getattr(instance, "classify", None)):
        raise ValueError(f"classifier {path!r} has no classify(body, channel) method")
    return instance
