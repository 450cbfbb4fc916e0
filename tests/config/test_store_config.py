"""The `store` section: SQLite in `state_dir` unless `store.url` names a PostgreSQL
database; a bad URL is refused with its line, never echoing a password."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from shiftd.config import Config, ConfigError, load_config
from shiftd.store.configured import configured_store
from shiftd.store.sqlite import SqliteStore


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shiftd.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_without_a_url_the_store_is_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    store = configured_store(Config.model_validate({"state_dir": tmp_path}))
    assert isinstance(store, SqliteStore)
    assert store.path == tmp_path / "shiftd.sqlite3"


def test_a_url_makes_the_store_postgresql_with_the_configured_bounds(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from shiftd.store.postgres import PostgresStore

    config = load_config(
        write(
            tmp_path,
            """\
            state_dir: ./state
            store:
              url: "postgresql://shiftd@db.internal:5432/shiftd"
              statement_timeout: "2s"
              lock_timeout: "500ms"
              readers: 2
            """,
        )
    )
    store = configured_store(config)  # nothing connects before `run`
    assert isinstance(store, PostgresStore)
    assert store.url == "postgresql://shiftd@db.internal:5432/shiftd"
    assert config.store.statement_timeout == timedelta(seconds=2)
    assert config.store.lock_timeout == timedelta(milliseconds=500)
    assert config.store.readers == 2


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://shiftd:hunter2@db/shiftd", 'must start with "postgresql://"'),
        ("postgresql://shiftd:hunter2@/shiftd", "must name a host"),
        ("postgresql://shiftd:hunter2@db.internal", "must name a database"),
    ],
)
def test_a_url_that_is_not_a_postgresql_database_is_refused_without_echoing_it(
    tmp_path: Path, url: str, problem: str
) -> None:
    path = write(tmp_path, f'store:\n  url: "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [line] = info.value.problems
    assert line.startswith(f"{path}:2: store.url: ")
    assert problem in line
    assert "hunter2" not in str(info.value)


def test_the_configs_repr_never_shows_the_url(tmp_path: Path) -> None:
    config = Config.model_validate({"store": {"url": "postgresql://u:hunter2@db/shiftd"}})
    assert "hunter2" not in repr(config)
    assert "hunter2" not in repr(config.store)


def test_the_embedded_default_never_loads_the_postgresql_driver() -> None:
    """`make demo` and a single-host install need no PostgreSQL, nor its client library."""
    probe = (
        "import sys; import shiftd.cli, shiftd.engine; from shiftd.config import Config;"
        " from shiftd.store.configured import configured_store;"
        " configured_store(Config.model_validate({'state_dir': '/nonexistent'}));"
        " print('psycopg' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
