"""Notifiers: the plug-in point for SMS and voice providers."""

from __future__ import annotations

from ..config import Config, ConsoleNotifierConfig, RecordNotifierConfig
from .base import Notifier, Outgoing, PermanentSendError, TransientSendError
from .console import ConsoleNotifier
from .record import RecordNotifier

__all__ = [
    "ConsoleNotifier",
    "Notifier",
    "Outgoing",
    "PermanentSendError",
    "RecordNotifier",
    "TransientSendError",
    "make_notifier",
]


def make_notifier(config: Config) -> Notifier:
    """The notifier named by `config.notifier.kind`."""
    match config.notifier:
        case ConsoleNotifierConfig():
            return ConsoleNotifier()
        case RecordNotifierConfig(path=path):
            return RecordNotifier(path)
    raise ValueError(f"unknown notifier {config.notifier!r}")
