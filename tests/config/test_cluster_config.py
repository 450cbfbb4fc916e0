"""The `cluster` section: only with a PostgreSQL store; its partitions and TTL bounded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shiftd.config import ConfigError, load_config


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "shiftd.yaml"
    path.write_text(text)
    return load_config(path)


def test_a_cluster_on_postgresql_takes_its_name_partitions_and_ttl(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        'store:\n  url: "postgresql://shiftd@db:5432/shiftd"\n'
        'cluster:\n  name: "a"\n  partitions: 16\n  lease_ttl: "2s"\n',
    )
    cluster = config.cluster  # type: ignore[attr-defined]
    assert (cluster.name, cluster.partitions, cluster.lease_ttl) == ("a", 16, timedelta(seconds=2))


def test_without_a_cluster_section_an_instance_runs_alone(tmp_path: Path) -> None:
    assert _load(tmp_path, "timezone: UTC\n").cluster is None  # type: ignore[attr-defined]


def test_a_cluster_without_a_postgresql_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster: a cluster needs a PostgreSQL store"):
        _load(tmp_path, "cluster:\n  partitions: 16\n")


def test_a_lease_ttl_too_short_to_renew_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster.lease_ttl"):
        _load(
            tmp_path,
            'store:\n  url: "postgresql://shiftd@db:5432/shiftd"\ncluster:\n  lease_ttl: "100ms"\n',
        )


def test_a_cluster_takes_how_long_a_forwarded_request_waits_and_is_kept(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        'store:\n  url: "postgresql://shiftd@db:5432/shiftd"\n'
        'cluster:\n  forward_wait: "20s"\n  inbox_retention: "10m"\n',
    )
    cluster = config.cluster  # type: ignore[attr-defined]
    assert (cluster.forward_wait, cluster.inbox_retention) == (
        timedelta(seconds=20),
        timedelta(minutes=10),
    )


def test_a_forward_wait_too_short_for_a_round_trip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cluster.forward_wait"):
        _load(
            tmp_path,
            'store:\n  url: "postgresql://shiftd@db:5432/shiftd"\n'
            'cluster:\n  forward_wait: "10ms"\n',
        )


def test_a_control_request_timeout_shorter_than_the_forward_wait_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"control.request_timeout: must be longer than"):
        _load(
            tmp_path,
            'store:\n  url: "postgresql://shiftd@db:5432/shiftd"\n'
            'cluster:\n  forward_wait: "20s"\ncontrol:\n  request_timeout: "10s"\n',
        )
