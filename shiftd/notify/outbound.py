"""The notifier the engine sends through: the configured provider's (texts, calls), with
coordinators' webhooks and, when `smtp` is configured, their email riding the same outbox."""

from __future__ import annotations

from ..config import Config
from ..credentials import CredentialError, read_secret
from ..shifts.organizations import DEFAULT, Organizations
from . import NotifierSetupError, make_notifier
from .base import Notifier
from .email import EmailNotifier
from .webhook import WebhookNotifier


async def outbound_notifier(config: Config, organizations: Organizations) -> Notifier:
    """Build it; the caller closes it (`aclose`). Raises NotifierSetupError when a secret
    (a webhook's, SMTP's password) cannot be read; nothing is left open then. Never waits
    on the network: cancellation has nothing to cut."""
    notifier: Notifier = WebhookNotifier(
        make_notifier(config),
        secrets=_webhook_secrets(config, organizations),
        timeout=config.sender.timeout,
    )
    if config.smtp is not None:
        try:
            notifier = EmailNotifier(notifier, config.smtp)
        except CredentialError as exc:
            await notifier.aclose()
            raise NotifierSetupError(f"smtp.password_file: {exc}") from None
    return notifier


def _webhook_secrets(config: Config, organizations: Organizations) -> dict[str, str]:
    """Each coordinator's webhook secret, read now. Raises NotifierSetupError when one
    cannot be read."""
    secrets = {}
    for org_id in {DEFAULT, *config.organizations}:
        org = organizations.get(org_id)
        name = org.coordinator.webhook_secret_file if org.coordinator else None
        if name is not None:
            try:
                secrets[f"coordinator:{org.id}"] = read_secret(name)
            except CredentialError as exc:
                where = f"organizations.{org_id}.coordinator.webhook_secret_file"
                raise NotifierSetupError(f"{where}: {exc}") from None
    return secrets
