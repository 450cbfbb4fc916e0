"""Who may connect to the control socket (SO_PEERCRED: root, our own user, the socket's
group) and the mode the socket is born with."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from shiftd.control import server as control_server
from shiftd.control.server import serve_control
from shiftd.testing.control import IO_LIMIT, connect
from shiftd.testing.engine import Harness


def test_peer_credentials_are_read_from_so_peercred() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        peer = control_server._peer(SimpleNamespace(socket=a))  # type: ignore[arg-type]
    assert peer == (os.getpid(), os.getuid(), os.getgid())


def test_root_our_own_user_and_the_sockets_group_may_connect_others_may_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.sock"
    path.write_text("")
    group = path.stat().st_gid
    stranger_uid, other_gid = 4242, group + 4242

    assert control_server._allowed((1, 0, other_gid), path)
    assert control_server._allowed((1, os.getuid(), other_gid), path)
    assert control_server._allowed((1, stranger_uid, group), path)
    assert not control_server._allowed((1, stranger_uid, other_gid), path)


async def test_a_peer_that_may_not_connect_is_answered_forbidden_and_disconnected(
    harness: Harness,
    sock_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setattr(control_server, "_peer", lambda stream: (99999, 4242, 4242 + 1))
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    with trio.fail_after(IO_LIMIT):
        c = await connect(sock_path)
        refused = await c.read()
        after = await c.read()
    assert refused is not None and refused["error"]["code"] == "forbidden"
    assert after is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_socket_is_born_0660_even_under_a_permissive_umask(
    harness: Harness, sock_path: Path, loopback_clock: trio.testing.MockClock
) -> None:
    previous = os.umask(0)
    try:
        await harness.nursery.start(serve_control, sock_path, harness.engine)
        after_bind = os.umask(0)
    finally:
        os.umask(previous)
    assert _mode(sock_path) == 0o660
    assert after_bind == 0  # the daemon's own umask is put back once the socket exists
