"""Loopback ports for the servers a test starts on a port it chooses (and starts again on the
same port), held for as long as the test needs them: between choosing a port and a server
binding it, or between a server's kill and its restart, no other process on the machine (a
test running beside this one, a client's outgoing connection) can be given that port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def reserve_port(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a free port on `host`, not listening: while it stays open the
    kernel gives that port to no other socket (neither a `bind` to port 0 nor a connection's
    local port), yet a server may bind and listen on it, again after each restart, as long as
    it sets SO_REUSEADDR (as `socket.create_server`, asyncio and Trio do). A connection to
    the port is refused while no server listens. The caller closes it when done."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
    except BaseException:
        sock.close()
        raise
    return sock


@contextmanager
def reserved_port(host: str = "127.0.0.1") -> Iterator[int]:
    """`reserve_port` for the length of a block: the port number."""
    with reserve_port(host) as sock:
        yield int(sock.getsockname()[1])
