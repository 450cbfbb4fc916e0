"""Coordinator email: outbox rows on the `email` channel, sent over SMTP.

stdlib `smtplib` in a worker thread (one at a time: coordinator mail is rare), bounded by
`smtp.timeout`. As for texts, a failure known not to have been taken (no connection, a 4xx
reply before the message was accepted) is retried by the sender; a 5xx reply is final; a
connection lost after the message was handed over may have delivered it, so it is not sent
again. Every other channel goes to the notifier it wraps.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import trio

from ..config import SmtpConfig
from ..credentials import read_secret
from ..logs import get_logger
from ..models import Channel
from .base import (
    Notifier,
    OneChannel,
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
)

log = get_logger(__name__)


class EmailNotifier(OneChannel):
    """Sends `email` rows itself and everything else through `inner`."""

    channel = Channel.EMAIL

    def __init__(self, inner: Notifier, smtp: SmtpConfig) -> None:
        """Reads `smtp.password_file` now; raises CredentialError if it cannot."""
        super().__init__(inner)
        self._smtp = smtp
        self._password = read_secret(str(smtp.password_file)) if smtp.password_file else None
        self._one_at_a_time = trio.CapacityLimiter(1)

    async def _send_own(self, message: Outgoing) -> str | None:
        """Mail an email row to its address.

        Raises TransientSendError (no connection, a 4xx answer), PermanentSendError (a 5xx
        answer) or SendOutcomeUnknown (the connection broke once the message was handed
        over). Cancellation abandons the worker thread, which ends within `smtp.timeout`.
        """
        mail = self._compose(message)
        await trio.to_thread.run_sync(
            self._deliver, mail, limiter=self._one_at_a_time, abandon_on_cancel=True
        )
        log.info("email.delivered", shift_id=message.shift_id, purpose=message.purpose.value)
        return str(mail["Message-ID"])

    def _compose(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._smtp.sender
        mail["To"] = message.to
        mail["Subject"] = _subject(message.body)
        mail["Date"] = formatdate(message.at.timestamp(), usegmt=True)
        mail["Message-ID"] = make_msgid(f"shiftd.{message.outbox_id}")
        mail.set_content(message.body)
        return mail

    def _deliver(self, mail: EmailMessage) -> None:
        smtp, timeout = self._smtp, self._smtp.timeout.total_seconds()
        try:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"smtp {smtp.host}: not connected ({exc})") from None
        handed_over = False
        try:
            with client:
                if smtp.starttls:
                    client.starttls(context=ssl.create_default_context())
                if smtp.username and self._password is not None:
                    client.login(smtp.username, self._password)
                handed_over = True
                client.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            error = TransientSendError if 400 <= code < 500 else PermanentSendError
            raise error(f"smtp {smtp.host}: {code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise PermanentSendError(f"smtp {smtp.host}: recipient refused") from None
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            if handed_over:
                raise SendOutcomeUnknown(f"smtp {smtp.host}: {type(exc).__name__}") from None
            raise TransientSendError(f"smtp {smtp.host}: {type(exc).__name__}") from None


_SUBJECT_MAX = 69  # "Subject: " and this fit the 78 characters a header line should


def _subject(body: str) -> str:
    """The notice's first clause on one line, cut at a word to fit a header line."""
    first = " ".join(body.split(";", 1)[0].split())
    if len(first) <= _SUBJECT_MAX:
        return first
    return first[: _SUBJECT_MAX - 3].rsplit(" ", 1)[0] + "..."
