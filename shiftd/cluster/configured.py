"""The lease manager a configuration asks for: one with a `cluster` section on a
PostgreSQL store, none otherwise (SQLite, or PostgreSQL alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config
    from .leases import LeaseManager


def configured_leases(config: Config, clock: Clock) -> LeaseManager | None:
    """A lease manager, not started, for `config`'s cluster; None without one. PostgreSQL's
    driver is imported only then."""
    cluster, url = config.cluster, config.store.url
    if cluster is None or url is None:
        return None
    from .leases import LeaseManager

    return LeaseManager(
        url, name=cluster.name, partitions=cluster.partitions, ttl=cluster.lease_ttl, clock=clock
    )
