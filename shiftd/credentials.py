"""Secrets (API tokens, provider auth tokens) come from files, never from the YAML in clear.

A configured path is read as is; a bare name is looked up in systemd's
`$CREDENTIALS_DIRECTORY` (`LoadCredential=`) first. Surrounding whitespace is stripped.
"""

from __future__ import annotations

import os
from pathlib import Path


class CredentialError(Exception):
    """A secret could not be read; the message names the file, never the secret."""


def read_secret(name_or_path: str | os.PathLike[str]) -> str:
    """The secret in `name_or_path`; raises CredentialError if missing, unreadable or empty."""
    path = Path(name_or_path)
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and len(path.parts) == 1 and (Path(directory) / path).exists():
        path = Path(directory) / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(f"{path}: cannot read secret: {exc.strerror}") from exc
    if not value:
        raise CredentialError(f"{path}: secret file is empty")
    return value
