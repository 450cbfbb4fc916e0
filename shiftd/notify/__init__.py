"""Notifiers: the plug-in point for SMS and voice providers."""

from __future__ import annotations

from typing import Any

import httpx

from ..config import Config, ConsoleNotifierConfig, RecordNotifierConfig, TwilioNotifierConfig
from ..credentials import CredentialError, read_secret
from ..logs import get_logger
from .base import (
    Notifier,
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    Throttled,
    TransientSendError,
)
from .console import ConsoleNotifier
from .record import RecordNotifier
from .twilio import TwilioNotifier

__all__ = [
    "ConsoleNotifier",
    "Notifier",
    "NotifierSetupError",
    "Outgoing",
    "PermanentSendError",
    "RecordNotifier",
    "SendOutcomeUnknown",
    "Throttled",
    "TransientSendError",
    "TwilioNotifier",
    "make_notifier",
]

log = get_logger(__name__)


class NotifierSetupError(ValueError):
    """The configured notifier cannot be built (its credential cannot be read…)."""


def make_notifier(
    config: Config | Any, *, transport: httpx.AsyncBaseTransport | None = None
) -> Notifier:
    """The notifier named by `config.notifier.kind`.

    For `twilio`, the auth token is read now (from `auth_token_file`, a path or a name in
    `$CREDENTIALS_DIRECTORY`) and the public URL for callbacks is `config.http.public_url`
    when an `http` section sets one. `transport` replaces the network (tests). Must be
    called inside `trio.run`.

    Raises NotifierSetupError (a ValueError) when the credential cannot be read.
    """
    match config.notifier:
        case ConsoleNotifierConfig():
            return ConsoleNotifier()
        case RecordNotifierConfig(path=path):
            return RecordNotifier(path)
        case TwilioNotifierConfig() as twilio:
            try:
                token = read_secret(twilio.auth_token_file)
            except CredentialError as exc:
                raise NotifierSetupError(f"notifier.auth_token_file: {exc}") from None
            public = getattr(getattr(config, "http", None), "public_url", None)
            public_url = str(public) if public else None
            notifier = TwilioNotifier.from_config(
                twilio, token, public_url=public_url, transport=transport
            )
            log.info(
                "notifier.twilio",
                api_base=twilio.api_base,
                numbers=len(twilio.from_numbers),
                rate_per_second=twilio.rate_per_second,
                calls_per_second=twilio.calls_per_second,
                callbacks=bool(public_url),
            )
            if not public_url:
                log.warning(
                    "notifier.twilio_no_public_url",
                    effect="calls speak the offer without taking key presses;"
                    " no delivery status callbacks",
                    hint="set http.public_url",
                )
            return notifier
    raise ValueError(f"unknown notifier {config.notifier!r}")
