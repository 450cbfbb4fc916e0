"""`shiftctl user ...`: the board's coordinator accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from ..control.client import ControlClient
from ..web.passwords import PasswordError, hash_password
from .render import Renderer, clean, is_terminal, print_table, short_ts
from .usage import UsageError


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a terminal.

    Raises UsageError when it cannot be read, the two differ, or it is too short."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not is_terminal(sys.stdin):
            raise UsageError("no terminal to ask the password on: use --password-stdin")
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    try:
        return hash_password(password)
    except PasswordError as exc:
        raise UsageError(f"{exc}; nothing was changed") from None


def cmd_user_add(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    password_hash = _read_password(ns.password_stdin)

    def render(r: dict[str, Any], out: TextIO) -> None:
        if r.get("result") == "created":
            print(f"coordinator {clean(r.get('name'))} created", file=out)
        else:
            print(f"coordinator {clean(r.get('name'))}: password changed", file=out)

    return client.call("user.add", {"name": ns.name, "password_hash": password_hash}), render


def cmd_user_remove(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        print(f"coordinator {clean(r.get('name'))} removed", file=out)

    return client.call("user.remove", {"name": ns.name}), render


def cmd_user_list(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        users = r.get("users") or []
        if not users:
            print("no coordinator accounts (add one: shiftctl user add NAME)", file=out)
            return
        print_table(
            ("NAME", "CREATED", "PASSWORD SET"),
            [
                (u.get("name"), short_ts(u.get("created_at")), short_ts(u.get("updated_at")))
                for u in users
            ],
            out,
        )

    return client.call("user.list"), render
