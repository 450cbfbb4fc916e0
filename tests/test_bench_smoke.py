"""The benchmarks run, at tiny sizes, so that `make bench` cannot rot. Nothing here is timed:
the figures of a smoke run mean nothing and are not looked at, only their shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: `bench.__main__.SCENARIOS` but `NOT_IN_SMOKE` (bench/ is not a package on the tests' path).
SCENARIOS = {
    "echo",
    "raw_sqlite",
    "bare_actors",
    "bare_spawn_gc_on",
    "http_ceiling",
    "store",
    "pg_drivers",
    "fanout",
    "fanout_rate",
    "claim_storm",
    "inbound",
    "open_shifts",
    "recovery",
    "http_inbound",
    "http_storm",
    "board",
    "failover",
}


def _bench(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m module args…` from the checkout, asserted to exit 0. A separate process: the
    benchmarks reconfigure logging, freeze the collector and raise the descriptor limit, none
    of which should leak into the rest of the suite."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_every_scenario_runs_and_reports(tmp_path: Path) -> None:
    proc = _bench("bench", "--size", "smoke", "--in-process", "--out", str(tmp_path), timeout=180)
    document = json.loads((tmp_path / "results.json").read_text())
    assert set(document["results"]) == SCENARIOS
    assert document["machine"]["nproc"] >= 1
    board = document["results"]["board"]  # every live page heard of the declines
    assert board["declines_with_pages"]["outcomes"] == {
        "declined": board["declines_with_pages"]["requests"]
    }
    assert board["live_pages"]["streams_that_got_events"] == board["live_pages"]["streams"] > 0
    claim = document["results"]["claim_storm"]
    assert claim["exactly_one_winner"], claim  # correctness, not speed
    assert claim["storm"]["outcomes"] == {"claimed": 1, "already_filled": claim["caregivers"] - 1}
    inbound = document["results"]["inbound"]
    assert inbound["many_connections"]["outcomes"] == {
        "declined": inbound["many_connections"]["requests"]
    }
    assert inbound["unknown_sender"]["outcomes"] == {
        "unknown_sender": inbound["unknown_sender"]["requests"]
    }
    opened = document["results"]["open_shifts"]
    assert opened["actors"] == opened["shifts"]
    assert opened["escalations_measured"] == opened["fanouts_started"] > 0
    assert document["results"]["recovery"]["actors"] == document["results"]["recovery"]["shifts"]
    assert document["results"]["fanout"]["slow"]["handed_to_provider"] > 0
    # Every signed webhook was accepted, and each one is a decline the store logged durably.
    http = document["results"]["http_inbound"]
    runs = {key: run for key, run in http.items() if key in ("c2", "c4")}
    assert len(runs) == 2, http
    for run in runs.values():
        assert run["requests"] > 0
        assert run["statuses"] == {"200": run["requests"]}
        assert run["stored_outcomes"] == {"declined": run["requests"]}
    # The in-memory comparator (FastAPI on uvicorn) answered the same requests.
    for run in http["inmemory_uvicorn"].values():
        assert run["statuses"] == {"200": run["requests"]}, run
    for layer in ("bare_asgi", "fastapi", "webhook_stack"):
        for run in document["results"]["http_ceiling"][layer].values():
            assert run["statuses"] == {"200": run["requests"]}, (layer, run)
    # Every YES of the HTTP storm got an answer on its own connection, one of them the claim.
    ceiling = document["results"]["http_storm"]["hypercorn_trivial"]
    assert ceiling["statuses"] == {"200": ceiling["connections"]}, ceiling
    storm = document["results"]["http_storm"]["after"]
    assert storm["transport_errors"] == 0, storm
    assert storm["statuses"] == {"200": storm["connections"]}
    assert storm["stored_outcomes"] == {"claimed": 1, "already_filled": storm["connections"] - 1}
    rate = document["results"]["fanout_rate"]
    for run in (rate["few"], rate["many"]):
        assert run["offered"] == 5 * run["fanouts"], run
    assert rate["many"]["open_offers"] > rate["few"]["open_offers"]
    scenarios = {f["scenario"] for f in document["figures"]}
    assert scenarios == {
        "fanout",
        "fanout rate",
        "http claim storm",
        "claim storm",
        "inbound",
        "http inbound",
        "open shifts",
        "recovery",
        "store",
        "store_pg",
        "pg_drivers",
        "board",
        "failover",
    }
    failover = document["results"]["failover"]["ttl_1s"]  # the survivor called, after
    assert len(failover["kill_to_first_call_s"]) == 1  # its stored instant
    assert failover["after_deadline_s"][0] >= 0
    table = (tmp_path / "results.md").read_text()
    assert "| scenario | figure | shiftd |" in table
    assert proc.stdout.count("== ") == len(SCENARIOS)  # each benchmark printed its figures


def test_cpu_per_answer_runs_and_reports(tmp_path: Path) -> None:
    proc = _bench(
        "bench.answers",
        *("--declines", "20", "--callers", "4", "--storm", "5", "--runs", "1"),
        *("--profile", str(tmp_path / "prof")),
    )
    result = json.loads(proc.stdout)
    assert result["declines"]["outcomes"] == {"declined": 20}
    assert result["storm"]["outcomes"] == {"claimed": 1, "already_filled": 4}
    for part, unit in (("declines", "decline"), ("storm", "claim_answer")):
        for figure in ("cpu_us", "python_calls", "sql_statements"):
            assert result[part][f"{figure}_per_{unit}"] > 0, (part, figure)


def test_what_bounds_a_scenario_is_its_cpu_by_layer(tmp_path: Path) -> None:
    proc = _bench(
        *("bench", "--size", "smoke", "--only", "inbound"),
        *("--bounds", "--in-process", "--out", str(tmp_path)),
    )
    shares = json.loads((tmp_path / "results.json").read_text())["bounds"]["inbound"]
    assert abs(sum(shares.values()) - 1) < 1e-6
    # The decline's path, each layer named by what it is (a run this small is too noisy to
    # say more about the shares than that they are there).
    for layer in ("shiftd: store", "SQLite (C)", "shiftd: actor, machine, supervisor"):
        assert shares[layer] > 0, shares
    assert "What bounds each missed target" in (tmp_path / "results.md").read_text()
    assert "inbound: CPU by layer" in proc.stdout
