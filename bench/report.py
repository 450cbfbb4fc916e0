"""From raw results to figures: each figure with the ceiling measured in the same run, the
ratio to it, and the target it is reported against (never asserted)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any

from . import bounds
from .common import Size


@dataclass(frozen=True, slots=True)
class Figure:
    scenario: str
    figure: str
    value: float | str
    unit: str
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling in (None, 0) or isinstance(self.value, str):
            return None
        return float(self.value) / float(self.ceiling)  # type: ignore[arg-type]


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "trio": version("trio"),
        "sqlite": sqlite3.sqlite_version,
        "kernel": platform.release(),
    }


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def figures(size: Size, r: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    g = lambda *p: _get(r, *p)  # noqa: E731

    if (f := g("fanout")) is not None:
        n = f["instant"]["caregivers"]
        out.append(
            Figure(
                "fanout",
                f"{n:,} texts, instant provider: command → last handed over",
                f["instant"]["seconds"],
                "s",
                g("raw_sqlite", "fanout_seconds"),
                "raw SQLite: same rows, sending+sent, 16 per commit",
                "≤ 0.2 s" if n == 10_000 else "",
                f["instant"]["seconds"] <= 0.2 if n == 10_000 else None,
            )
        )
        slow = f["slow"]
        ideal = slow["caregivers"] * slow["provider_latency_s"] / slow["concurrency"]
        out.append(
            Figure(
                "fanout",
                f"{n:,} texts, {slow['provider_latency_s'] * 1e3:g} ms provider, "
                f"concurrency {slow['concurrency']}",
                slow["seconds"],
                "s",
                round(ideal, 3),
                "n x latency / concurrency (arithmetic)",
            )
        )

    if (fr := g("fanout_rate")) is not None:
        few, many = fr["few"], fr["many"]
        what = f"fanouts/s, 5 caregivers each, {few['concurrency']} at a time"
        out.append(
            Figure(
                "fanout rate",
                f"{what}, {few['open_offers']:,} offers of the role open",
                few["fanouts_per_s"],
                "/s",
                target="≥ 1,500/s",
                met=few["fanouts_per_s"] >= 1500,
            )
        )
        ratio = many["fanouts_per_s"] / few["fanouts_per_s"] if few["fanouts_per_s"] else 0.0
        out.append(
            Figure(
                "fanout rate",
                f"{what}, {many['open_offers']:,} offers of the role open",
                many["fanouts_per_s"],
                "/s",
                few["fanouts_per_s"],
                f"the same, {few['open_offers']:,} open",
                "within 20 %",
                abs(ratio - 1) <= 0.2,
            )
        )

    if (c := g("claim_storm")) is not None:
        n = c["caregivers"]
        out.append(
            Figure(
                "claim storm",
                f"{n:,} simultaneous YES: winners",
                f"{c['winners']} ({c['winner']})",
                "",
                target="exactly 1",
                met=bool(c["exactly_one_winner"]),
            )
        )
        for q in ("p50", "p99"):
            value = c["storm"]["latency"][f"{q}_ms"]
            out.append(
                Figure(
                    "claim storm",
                    f"answer latency {q}",
                    value,
                    "ms",
                    g("echo", "storm", "latency", f"{q}_ms"),
                    f"echo, {n:,}-connection storm",
                    "< 100 ms" if q == "p99" else "",
                    value < 100 if q == "p99" else None,
                )
            )

    if (i := g("inbound")) is not None:
        many = i["many_connections"]
        conns = many["connections"]
        echo_many = g("echo", "closed_50", "per_s")
        out.append(
            Figure(
                "inbound",
                f"durable msgs/s, {conns} connections, not pipelined",
                many["per_s"],
                "/s",
                echo_many,
                "echo, 50 connections",
                "≥ 5,000/s and ≥ 0.3 x echo",
                many["per_s"] >= 5000 and (echo_many is None or many["per_s"] >= 0.3 * echo_many),
            )
        )
        for q in ("p50", "p99"):
            out.append(
                Figure(
                    "inbound",
                    f"latency {q}, {conns} connections",
                    many["latency"][f"{q}_ms"],
                    "ms",
                    g("echo", "closed_50", "latency", f"{q}_ms"),
                    "echo, 50 connections",
                )
            )
        unknown = i.get("unknown_sender")
        if unknown:
            out.append(
                Figure(
                    "inbound",
                    f"unknown numbers (lookup + durable log only), {conns} connections",
                    unknown["per_s"],
                    "/s",
                    echo_many,
                    "echo, 50 connections",
                )
            )
        one = i["one_connection"]
        out.append(
            Figure(
                "inbound",
                "durable msgs/s, 1 connection",
                one["per_s"],
                "/s",
                g("echo", "closed_1", "per_s"),
                "echo, 1 connection",
            )
        )
        out.append(
            Figure(
                "inbound",
                "latency p99, 1 connection",
                one["latency"]["p99_ms"],
                "ms",
                g("echo", "closed_1", "latency", "p99_ms"),
                "echo, 1 connection",
            )
        )

    if (h := g("http_inbound")) is not None:
        out += _http_figures(h, g("http_ceiling"))

    if (st := g("http_storm")) is not None:
        before, after = st["before"], st["after"]
        n = after["connections"]
        hold = after["hold_seconds"]
        what = (
            f"{n:,} connections opened at once, a signed YES on each {hold:g} s later:"
            " transport errors (listen-queue overflows)"
        )
        out.append(
            Figure(
                "http claim storm",
                f"{what}, former listener (backlog 128, keep-alive 5 s)",
                f"{before['transport_errors']} ({before['listen_overflows']})",
                "",
            )
        )
        trivial = st.get("hypercorn_trivial")
        trivial_name = "hypercorn trio worker, trivial ASGI route, same listener and storm"
        out.append(
            Figure(
                "http claim storm",
                f"{what}, defaults (`http.backlog` 4,096, `http.keep_alive_timeout` 60 s;"
                f" somaxconn {st['somaxconn']})",
                f"{after['transport_errors']} ({after['listen_overflows']})",
                "",
                trivial["transport_errors"] if trivial else None,
                f"{trivial_name}; {trivial['listen_overflows']} overflows" if trivial else "",
                target="0",
                met=after["transport_errors"] == 0,
            )
        )
        out.append(
            Figure(
                "http claim storm",
                "winners (defaults)",
                str(after["winners"]),
                "",
                target="exactly 1",
                met=after["winners"] == 1 and after["stored_winner"] is not None,
            )
        )
        for q in ("p50", "p99"):
            out.append(
                Figure(
                    "http claim storm",
                    f"answer latency {q} (defaults)",
                    after["latency"][f"{q}_ms"],
                    "ms",
                    _get(trivial, "latency", f"{q}_ms"),
                    trivial_name if trivial else "",
                    "≤ 300 ms" if q == "p99" else "",
                    after["latency"][f"{q}_ms"] <= 300
                    if q == "p99" and after["latency"][f"{q}_ms"] is not None
                    else None,
                )
            )

    bare = g("bare_actors")
    if (o := g("open_shifts")) is not None:
        n = o["shifts"]
        rss = o["rss_bytes_per_actor"]
        out.append(
            Figure(
                "open shifts",
                f"resident memory per sleeping actor ({n:,} actors)",
                round(rss / 1024, 2),
                "KiB",
                round(bare["spawn"]["rss_bytes_per_actor"] / 1024, 2) if bare else None,
                "bare actor",
                "≤ 8 KiB",
                rss <= 8 * 1024,
            )
        )
        out.append(
            Figure(
                "open shifts",
                "spawn time per actor (recovered from the store, to asleep)",
                o["us_per_actor"],
                "µs",
                bare["spawn"]["us_per_actor"] if bare else None,
                "bare actor, collector paused",
            )
        )
        rate = o["load"]["per_s"]
        for q in ("p50", "p99", "max"):
            value = o["lateness"][f"{q}_ms"]
            out.append(
                Figure(
                    "open shifts",
                    f"escalation lateness {q} ({o['escalations_measured']:,} timers, "
                    f"{rate:,.0f} inbound/s)",
                    value,
                    "ms",
                    _get(bare, "lateness", f"{q}_ms") if bare else None,
                    "bare timers among bare actors, echo at the same rate",
                    "< 20 ms" if q == "p99" else "",
                    value < 20 if q == "p99" else None,
                )
            )
        steps = o.get("longest_task_steps") or []
        if steps:
            gc_pause = o["gc_during_window"]["longest_pause_ms"]
            out.append(
                Figure(
                    "open shifts",
                    f"longest loop stall meanwhile ({steps[0]['task']}; "
                    f"longest collector pause {gc_pause} ms)",
                    steps[0]["ms"],
                    "ms",
                )
            )
        out.append(
            Figure(
                "open shifts",
                "inbound latency p99 meanwhile (paced)",
                o["load"]["latency"]["p99_ms"],
                "ms",
                _get(bare, "load", "latency", "p99_ms") if bare else None,
                "echo at the same rate",
            )
        )

    if (rc := g("recovery")) is not None:
        n = rc["shifts"]
        bare_s = bare["spawn"]["seconds"] if bare else None
        for key, label in (("ready_s", "start → READY"), ("settled_s", "start → all asleep")):
            out.append(
                Figure(
                    "recovery",
                    f"{label}, {n:,} shifts in progress",
                    rc[key],
                    "s",
                    bare_s,
                    f"spawn {bare['spawn']['n']:,} bare actors" if bare else "",
                    "≤ 1.5 x bare spawn" if key == "ready_s" else "",
                    (rc[key] <= 1.5 * bare_s) if (bare_s and key == "ready_s") else None,
                )
            )
        out.append(
            Figure(
                "recovery",
                f"graceful stop with {n:,} actors",
                rc["stop_s"],
                "s",
                bare["stop_s"] if bare else None,
                f"cancel {bare['spawn']['n']:,} bare actors" if bare else "",
            ),
        )

    if (s := g("store")) is not None:
        grp, one = s["group"], s["single"]
        w = grp["writers"]
        out.append(
            Figure(
                "store",
                f"group commit: durable writes/s ({w} writers, one write each in flight)",
                grp["writes_per_s"],
                "/s",
                g("raw_sqlite", "batched_writers", "rows_per_s"),
                f"raw SQLite, {w} inserts per commit",
            )
        )
        out.append(
            Figure(
                "store",
                f"group commit: commits/s (mean batch {grp['mean_batch']})",
                grp["commits_per_s"],
                "/s",
                g("raw_sqlite", "batched_writers", "commits_per_s"),
                f"raw SQLite, {w} inserts per commit",
            )
        )
        out.append(
            Figure(
                "store",
                "group commit: commit latency p99",
                grp["commit"]["p99_ms"],
                "ms",
                g("raw_sqlite", "batched_writers", "commit", "p99_ms"),
                f"raw SQLite, {w} inserts per commit",
            )
        )
        out.append(
            Figure(
                "store",
                "group commit: write latency p99 (queued → committed)",
                grp["write"]["p99_ms"],
                "ms",
            )
        )
        out.append(
            Figure(
                "store",
                "no group commit (batch_max=1): commits/s",
                one["commits_per_s"],
                "/s",
                g("raw_sqlite", "per_row_commit", "commits_per_s"),
                "raw SQLite, 1 insert per commit",
            )
        )
        out.append(
            Figure(
                "store",
                "no group commit: commit latency p99",
                one["commit"]["p99_ms"],
                "ms",
                g("raw_sqlite", "per_row_commit", "commit", "p99_ms"),
                "raw SQLite, 1 insert per commit",
            )
        )
        out.append(
            Figure(
                "store",
                "no group commit: write latency p99 (queued → committed)",
                one["write"]["p99_ms"],
                "ms",
            )
        )
        out += _store_pg_figures(s.get("store_pg"), grp["writes_per_s"])
    if (b := g("board")) is not None:
        out += _board_figures(b)
    if (d := g("pg_drivers")) is not None:
        out += _driver_figures(d)
    if (f := g("failover")) is not None and "skipped" not in f:
        out += _failover_figures(f)
    if (ci := g("cluster_inbound")) is not None:
        out += _cluster_inbound_figures(ci)
    if (cs := g("cluster_storm")) is not None:
        out += _cluster_storm_figures(cs)
    return out


_SETUPS = {
    "sqlite": "1 daemon, SQLite",
    "postgres": "1 daemon, PostgreSQL, no cluster",
    "cluster_1": "cluster of 1",
    "cluster_2": "cluster of 2",
    "cluster_3": "cluster of 3",
}


def _cluster_inbound_figures(r: dict[str, Any]) -> list[Figure]:
    """Declines/s through one to three instances, each beside pgbench's simple-update rate
    on the same server; latency and CPU per decline beside one daemon on SQLite."""
    if "skipped" in r:
        return [Figure("cluster inbound", "declines through a cluster", r["skipped"], "")]
    bench = r.get("pgbench") or {}
    tps = bench.get("tps")
    pg_name = (
        f"pgbench -N (simple-update), {bench['clients']} clients"
        if tps is not None
        else str(bench.get("skipped", "no pgbench"))
    )
    base = r.get("sqlite")
    out = []
    for key, label in _SETUPS.items():
        run = r.get(key)
        if run is None:
            continue
        load = run["load"]
        what = f"{label}: durable declines/s, {load['connections']} connections"
        if run["instances"] > 1:
            what += f" spread over {run['instances']}"
        others = {k: v for k, v in load["outcomes"].items() if k != "declined"}
        if others:  # e.g. `unavailable`: a lease lost under load, a forward unanswered
            what += " (also answered: " + ", ".join(f"{v:,} {k}" for k, v in others.items()) + ")"
        out.append(Figure("cluster inbound", what, load["per_s"], "/s", tps, pg_name))
    for key, label in _SETUPS.items():
        run = r.get(key)
        if run is None or key == "sqlite":
            continue
        out.append(
            Figure(
                "cluster inbound",
                f"{label}: latency p99",
                run["load"]["latency"]["p99_ms"],
                "ms",
                _get(base, "load", "latency", "p99_ms"),
                _SETUPS["sqlite"],
            )
        )
    for key, label in _SETUPS.items():
        run = r.get(key)
        if run is None:
            continue
        db = run.get("database_cpu_us_per_message")
        where = f"; database {db:,.0f} µs" if db is not None else ""
        out.append(
            Figure(
                "cluster inbound",
                f"{label}: daemons' CPU per decline{where}",
                run["daemons_cpu_us_per_message"],
                "µs",
                _get(base, "daemons_cpu_us_per_message") if key != "sqlite" else None,
                _SETUPS["sqlite"] if key != "sqlite" else "",
            )
        )
    return out


def _cluster_storm_figures(r: dict[str, Any]) -> list[Figure]:
    """Simultaneous accepts spread over three instances: one winner, and how long the
    answers took beside the same storm on one daemon on SQLite."""
    if "skipped" in r:
        return [Figure("cluster storm", "accepts spread over a cluster", r["skipped"], "")]
    run, base = r["cluster_3"], r.get("sqlite")
    n = run["caregivers"]
    out = [
        Figure(
            "cluster storm",
            f"{n:,} simultaneous YES over 3 instances: winners",
            f"{run['winners']} ({run['winner']})",
            "",
            target="exactly 1",
            met=bool(run["exactly_one_winner"]),
        )
    ]
    for q in ("p50", "p99"):
        out.append(
            Figure(
                "cluster storm",
                f"answer latency {q}, 3 instances",
                run["storm"]["latency"][f"{q}_ms"],
                "ms",
                _get(base, "storm", "latency", f"{q}_ms"),
                f"the same storm, {_SETUPS['sqlite']}",
            )
        )
    return out


def _failover_figures(f: dict[str, Any]) -> list[Figure]:
    """kill -9 of a shift's owner → the survivor's first escalation call, per lease TTL."""
    out = []
    for run in f.values():
        if not isinstance(run, dict) or not run.get("kill_to_first_call_s"):
            continue  # wall_s, machine
        worst = max(run["kill_to_first_call_s"])
        out.append(
            Figure(
                "failover",
                f"kill -9 → first call by the new owner, lease TTL {run['ttl_s']} s (worst of"
                f" {len(run['kill_to_first_call_s'])})",
                worst,
                "s",
                target=f"≤ TTL + TTL/3 = {run['bound_s']} s",
                met=worst <= run["bound_s"],
            )
        )
    return out


def _driver_figures(d: dict[str, Any]) -> list[Figure]:
    """psycopg from Trio: worker threads (what the store does) beside waiting on the socket
    with psycopg's private generator core (the ceiling: no thread hop)."""
    if "skipped" in d:
        return [Figure("pg_drivers", "psycopg from Trio", d["skipped"], "")]
    a, b = d["trio_socket_wait"], d["worker_thread"]
    ceiling = "psycopg generator core, Trio socket waits"
    return [
        Figure(
            "pg_drivers",
            f"worker threads: {label}",
            b[key],
            "/s",
            a[key],
            ceiling,
        )
        for key, label in (
            ("reads_per_s_1_conn", "point reads/s, one at a time"),
            ("reads_per_s_4_conns_8_tasks", "point reads/s, 8 tasks over 4 connections"),
            ("group_commit_writes_per_s", "writes/s, 256 per commit, each in a savepoint"),
        )
    ]


def _store_pg_figures(pg: dict[str, Any] | None, sqlite_writes: float) -> list[Figure]:
    """PostgreSQL's group commit beside raw psycopg (same rows, same batch) and SQLite's."""
    if pg is None:
        return []
    if "skipped" in pg:
        return [Figure("store_pg", "PostgreSQL group commit", pg["skipped"], "")]
    grp, raw = pg["group"], pg["raw"]
    w, n = grp["writers"], raw["per_commit"]
    return [
        Figure(
            "store_pg",
            f"PostgreSQL group commit: durable writes/s ({w} writers)",
            grp["writes_per_s"],
            "/s",
            raw["rows_per_s"],
            f"raw psycopg, {n} inserts per commit",
        ),
        Figure(
            "store_pg",
            "PostgreSQL group commit: writes/s beside SQLite's",
            grp["writes_per_s"],
            "/s",
            sqlite_writes,
            "shiftd's SQLite store, same run",
        ),
        Figure(
            "store_pg",
            f"PostgreSQL group commit: commits/s (mean batch {grp['mean_batch']})",
            grp["commits_per_s"],
            "/s",
            raw["commits_per_s"],
            f"raw psycopg, {n} inserts per commit",
        ),
        Figure(
            "store_pg",
            "PostgreSQL group commit: write latency p99 (queued → committed)",
            grp["write"]["p99_ms"],
            "ms",
        ),
    ]


def _board_figures(b: dict[str, Any]) -> list[Figure]:
    """The coordinator's page: page answer times, and the engine with live pages open."""
    n = b["shifts_in_progress"]
    out = []
    for path, label in (
        ("/board", f"board page ({n:,} shifts in progress)"),
        ("/board/shifts/sh-0000001", "a shift's story page"),
        ("/board/stats", "stats page (4 SVG charts)"),
    ):
        p99 = b["pages"][path]["p99_ms"]
        out.append(Figure("board", f"{label}: answer p50", b["pages"][path]["p50_ms"], "ms"))
        out.append(
            Figure("board", f"{label}: answer p99", p99, "ms", target="< 200 ms", met=p99 < 200)
        )
    pages = b["live_pages"]["open_during_run"]
    alone, watched = b["declines_no_page"]["per_s"], b["declines_with_pages"]["per_s"]
    out.append(Figure("board", "declines/s, no live page open", alone, "/s"))
    out.append(
        Figure(
            "board",
            f"declines/s with {pages} live pages open",
            watched,
            "/s",
            alone,
            "no live page open",
            "no measurable slowdown",
        )
    )
    return out


def _runs(result: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    """The per-connection-count runs of an HTTP result (`c8`, `c32`…), by connection count."""
    if not result:
        return {}
    return {
        int(key[1:]): run
        for key, run in result.items()
        if key[:1] == "c" and key[1:].isdigit() and isinstance(run, dict)
    }


def _http_figures(h: dict[str, Any], ceiling: dict[str, Any] | None) -> list[Figure]:
    """shiftd's signed SMS webhooks against hypercorn serving a trivial route (same client,
    same requests, same connections), and the layers in between."""
    out: list[Figure] = []
    bare = _runs(_get(ceiling, "bare_asgi")) if ceiling else {}
    bare_name = "hypercorn trio worker, trivial ASGI route, {n} connections"
    runs = _runs(h)
    for n, run in sorted(runs.items()):
        hc = bare.get(n, {})
        target, met = "", None
        if n == 8:  # the target is set on 8 connections
            target = "≥ 1,200/s and ≥ 0.75x"
            met = (
                run["per_s"] >= 1200
                and bool(hc.get("per_s"))
                and run["per_s"] >= 0.75 * hc["per_s"]
            )
        out.append(
            Figure(
                "http inbound",
                f"durable msgs/s, signed SMS webhooks, {n} keep-alive connections",
                run["per_s"],
                "/s",
                hc.get("per_s"),
                bare_name.format(n=n),
                target,
                met,
            )
        )
        for q in ("p50", "p99"):
            out.append(
                Figure(
                    "http inbound",
                    f"latency {q}, {n} connections",
                    run["latency"][f"{q}_ms"],
                    "ms",
                    _get(hc, "latency", f"{q}_ms"),
                    bare_name.format(n=n),
                )
            )
    inmemory = _runs(h.get("inmemory_uvicorn"))
    for n, run in sorted(runs.items()):
        if (other := inmemory.get(n)) is not None:
            out.append(
                Figure(
                    "http inbound",
                    f"durable msgs/s, {n} connections, against the in-memory shape",
                    run["per_s"],
                    "/s",
                    other.get("per_s"),
                    f"FastAPI on uvicorn, one dict lookup per webhook, nothing durable,"
                    f" {n} connections",
                )
            )
    if runs:
        n = max(runs)
        out.append(
            Figure(
                "http inbound",
                f"server CPU per message, {n} connections",
                runs[n]["server_cpu_us_per_request"],
                "µs",
                _get(bare.get(n), "server_cpu_us_per_request"),
                f"hypercorn, trivial ASGI route (per request), {n} connections",
            )
        )
    if ceiling:
        n = max(bare) if bare else None
        for key, label in (
            ("fastapi", "minimal FastAPI route (no shiftd)"),
            ("webhook_stack", "shiftd's HTTP layer alone: its app, engine answering at once"),
        ):
            layer = _runs(ceiling.get(key)).get(n) if n is not None else None
            if layer:
                out.append(
                    Figure(
                        "http inbound",
                        f"{label}: requests/s, {n} connections",
                        layer["per_s"],
                        "/s",
                        bare[n]["per_s"],
                        bare_name.format(n=n),
                    )
                )
    return out


def build(size: Size, results: dict[str, Any]) -> dict[str, Any]:
    figs = figures(size, results)
    shares = {name: r["machine"]["other_share"] for name, r in results.items() if "machine" in r}
    return {
        "size": size.name,
        "machine": machine(),
        "other_load": shares,
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figs],
        "results": results,
    }


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value != value:  # NaN
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return f"{text} {unit}".strip() if unit and unit != "/s" else text + (unit or "")


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    lines = [
        f"Measured {m['date']} on {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, trio {m['trio']}, SQLite {m['sqlite']}, Linux {m['kernel']}; "
        f"size `{document['size']}`.",
    ]
    shares = document.get("other_load") or {}
    if shares:
        worst = max(shares.values())
        lines.append(f"Other processes took at most {worst:.1%} of the CPUs while a scenario ran.")
        disturbed = sorted(name for name, share in shares.items() if share > 0.05)
        if disturbed:
            names = ", ".join(disturbed)
            lines.append(f"**Disturbed by other load (figures unreliable): {names}.**")
    lines += [
        "",
        "| scenario | figure | shiftd | ceiling (same run) | shiftd / ceiling | target |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    for f in document["figures"]:
        ceiling = (
            f"{_num(f['ceiling'], f['unit'])} ({f['ceiling_name']})"
            if f["ceiling"] is not None
            else "—"
        )
        ratio = f"{f['ratio']:.2f}x" if f["ratio"] is not None else "—"
        target = f["target"] or ""
        if f["met"] is not None:
            target = f"{target} {'✅ met' if f['met'] else '❌ missed'}".strip()
        lines.append(
            f"| {f['scenario']} | {f['figure']} | {_num(f['value'], f['unit'])} | {ceiling} "
            f"| {ratio} | {target} |"
        )
    return "\n".join(lines) + "\n" + bounds.markdown(document.get("bounds") or {})


def describe(name: str, result: dict[str, Any]) -> str:
    """A few printed lines of what one scenario measured."""
    lines = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        elif isinstance(node, list):
            lines.append(f"  {prefix}: {node[:5]}{' …' if len(node) > 5 else ''}")
        else:
            lines.append(f"  {prefix}: {node}")

    walk("", result)
    return "\n".join(lines)
