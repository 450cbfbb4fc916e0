"""The crash loop: the real daemon under a mixed workload, killed with SIGKILL at random
moments, restarted, and checked against `invariants` after every restart and at the end.

The workload, all at once and at random (one seed drives every choice; it is printed so a
failure replays with `--seed`): shifts added and fanned out by several coordinators at once
and again later; caregivers declining, accepting the same shift at the same instant through
the control socket and through Twilio-signed webhooks, releasing shifts they hold, texting
STOP and START; and a provider (the in-package fake Twilio, on 127.0.0.1) that now and then
answers 429 or 500, or takes a message and answers after the notifier's timeout.

Each kill lands at a random instant of that workload, or during start-up (recovery). After
each restart the loop measures how long the daemon took to answer, how many messages the
crash cost (rows it caught `sending`, failed for good: the price of at-most-once), and how
long the waves that fell due while it was down took to run; then it checks the invariants.
At the end it lets every due wave and send finish, checks once more and stops the daemon
with SIGTERM (exit 0 expected).

`python -m shiftd.testing.crashloop --kills 500` (what `make crash` runs) prints the figures;
the exit status is 1 when any invariant was violated.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import trio

from ..control.client import encode_request
from .fakeprovider import FakeTwilio
from .invariants import Ledger, ProviderRequest, StoreView, check

__all__ = ["CrashReport", "CrashSettings", "DaemonDied", "main", "run_crash_loop"]

ACCOUNT_SID = "AC" + "c" * 32
FROM_NUMBERS = ("+15550100001", "+15550100002")
ROLE = "RN"


@dataclass(frozen=True)
class CrashSettings:
    """What a crash run does. Times in seconds of real time."""

    kills: int = 20
    seed: int = 0
    workdir: Path | None = None
    """Where the daemon's state goes (default: a fresh directory under /tmp, removed after
    a run without violations)."""
    caregivers: int = 10
    escalation_delay: int = 2
    """The default policy's delay from texts to calls (whole seconds: the config's unit)."""
    longest_round: float = 1.5
    """Longest stretch of workload before a kill."""
    startup_kill_rate: float = 0.15
    """Share of kills that land during start-up (recovery) rather than under load."""
    restart_bound: float = 30.0
    """The daemon must answer `ping` this long after it is started, every time."""
    due_bound: float = 15.0
    """Waves due when the daemon comes back must have run this long after it answers."""
    send_grace: float = 5.0
    """A text handed to the provider just before a STOP may arrive this long after it."""
    python: str = sys.executable
    progress: bool = False
    """Print a line every 25 kills."""


@dataclass
class CrashReport:
    """What a crash run measured and found."""

    seed: int
    kills: int = 0
    startup_kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    cost: list[int] = field(default_factory=list)
    """Per kill: outbox rows it caught `sending` (failed on restart, never re-sent)."""
    due_lag: list[float] = field(default_factory=list)
    """Per restart with waves due: seconds from answering to having run them all."""
    actions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    provider: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    final_exit: int | None = None
    workdir: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and self.final_exit == 0

    def summary(self) -> str:
        """The figures, as printed at the end of a run."""
        r = sorted(self.restart_seconds) or [0.0]
        lost = sum(self.cost)
        hit = sum(1 for c in self.cost if c)
        lines = [
            f"seed {self.seed}: {self.kills} kills ({self.startup_kills} during start-up)"
            f" in {self.elapsed:.0f}s",
            f"  restart to answering: median {statistics.median(r):.2f}s, max {r[-1]:.2f}s",
            f"  messages lost to crashes (caught `sending`, failed, never re-sent): {lost}"
            f" in total, {hit} of {len(self.cost)} kills cost any, at most"
            f" {max(self.cost, default=0)} per kill",
            f"  waves due at restart ran within {max(self.due_lag, default=0.0):.2f}s of the"
            f" start ({len(self.due_lag)} restarts had some due)",
            "  workload: " + _counts(self.actions),
            "  answers: " + _counts(self.outcomes),
            "  provider: " + _counts(self.provider),
            f"  final SIGTERM exit code: {self.final_exit}",
        ]
        if self.violations:
            lines.append(f"  VIOLATIONS ({len(self.violations)}):")
            lines += [f"    {v}" for v in self.violations[:50]]
        else:
            lines.append("  every invariant held after every restart")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


class DaemonDied(Exception):
    """The daemon exited on its own (not killed by the harness)."""


class RemoteError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    """`shiftd run` as a child process, with its state in `workdir`."""

    def __init__(self, workdir: Path, python: str) -> None:
        self.workdir = workdir
        self.python = python
        self.config = workdir / "shiftd.yaml"
        self.socket = workdir / "state" / "control.sock"
        self.db = workdir / "state" / "shiftd.sqlite3"
        self.log = workdir / "daemon.log"
        self.proc: trio.Process | None = None

    def write_config(self, *, api_base: str, http_port: int, delay: int) -> None:
        (self.workdir / "twilio-token").write_text(FakeTwilio().auth_token + "\n")
        numbers = ", ".join(f'"{n}"' for n in FROM_NUMBERS)
        self.config.write_text(
            f"""\
state_dir: ./state
agency_name: "Crash Care"
escalation:
  delay: "{delay}s"
notifier:
  kind: twilio
  account_sid: "{ACCOUNT_SID}"
  auth_token_file: ./twilio-token
  from_numbers: [{numbers}]
  api_base: "{api_base}"
  rate_per_second: 500
  burst: 100
  calls_per_second: 500
  connect_timeout: "1s"
  request_timeout: "1s"
sender:
  max_attempts: 4
  backoff_initial: "100ms"
  backoff_max: "1s"
  timeout: "2s"
shutdown:
  grace: "3s"
http:
  listen: "127.0.0.1:{http_port}"
  public_url: "http://127.0.0.1:{http_port}"
log:
  format: json
"""
        )

    async def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await trio.lowlevel.open_process(
                [self.python, "-m", "shiftd.cli", "run", "--config", str(self.config)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    async def wait_answering(self, bound: float) -> float:
        """Seconds until `ping` answers. Raises DaemonDied if it exits, TooSlowError past
        `bound`."""
        assert self.proc is not None
        started = trio.current_time()
        with trio.fail_after(bound):
            while True:
                if self.proc.poll() is not None:
                    raise DaemonDied(f"exit {self.proc.returncode}: {self.tail()}")
                try:
                    await self.call("ping", bound=2)
                    return trio.current_time() - started
                except (OSError, RemoteError, trio.TooSlowError, ValueError):
                    await trio.sleep(0.02)

    async def kill9(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        with trio.fail_after(10):
            await self.proc.wait()

    async def terminate(self, bound: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(bound):
            return await self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def call(self, cmd: str, *, bound: float = 10, **args: Any) -> dict[str, Any]:
        """One control command; its result. Raises RemoteError for an `ok: false` answer,
        OSError/trio errors when the daemon is not there, TooSlowError past `bound`."""
        with trio.fail_after(bound):
            stream = await trio.open_unix_socket(str(self.socket))
            async with stream:
                await stream.send_all(encode_request(1, cmd, args))
                data = b""
                while b"\n" not in data:
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        raise ConnectionResetError("the daemon closed the connection")
                    data += chunk
        answer = json.loads(data.split(b"\n", 1)[0])
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise RemoteError(str(error.get("code")), str(error.get("message")))
        return dict(answer["result"])

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class _Webhook:
    sid: str
    phone: str
    intent: str
    asked_at: float
    answered_at: float


class Workload:
    """Coordinators and caregivers acting at random against one daemon."""

    def __init__(
        self, daemon: Daemon, fake: FakeTwilio, rng: random.Random, report: CrashReport
    ) -> None:
        self.daemon = daemon
        self.fake = fake
        self.rng = rng
        self.report = report
        self.ledger = Ledger()
        self.webhook_base = ""
        self.phones: list[str] = []
        self.shifts = 0
        self.first_start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        self.webhooks: list[_Webhook] = []
        self._keywords: dict[str, trio.Lock] = {}
        self.resolved = 0

    # ---- reading the store --------------------------------------------------------------

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows from the store, read-only, in a worker thread (the fake provider, served by
        this process, keeps answering meanwhile); [] if the store cannot be read now."""
        return await trio.to_thread.run_sync(self._query, sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            conn = sqlite3.connect(f"file:{self.daemon.db}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return []
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    async def _open_offers(self) -> list[tuple[str, str, int]]:
        """(shift, phone, code) of offers a caregiver may still answer."""
        return [
            (s, p, c)
            for s, p, c in await self.query(
                "SELECT o.shift_id, c.phone, o.code FROM offers o"
                " JOIN shifts s ON s.id = o.shift_id JOIN caregivers c ON c.id = o.caregiver_id"
                " WHERE s.state IN ('offering', 'escalated') AND o.declined_at IS NULL"
                " AND o.released_at IS NULL"
            )
        ]

    # ---- acting -------------------------------------------------------------------------

    async def setup(self, caregivers: int) -> None:
        self.phones = [f"+1555031{n:04d}" for n in range(1, caregivers + 1)]
        roster = [
            {"id": f"cg-{n}", "name": f"Carer {n}", "role": ROLE, "phone": phone}
            for n, phone in enumerate(self.phones, 1)
        ]
        await self.daemon.call("roster.import", caregivers=roster, shifts=[])

    async def drive(self, until: float) -> None:
        """Start actions at random until `until` (Trio time); cancelled by the kill."""
        actions: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (3, self.new_fanout),
            (1, self.repeat_fanout),
            (2.5, self.accept_storm),
            (2, self.decline),
            (1.5, self.release),
            (1, self.stop_or_start),
            (1.5, self.provider_fault),
        ]
        weights = [w for w, _ in actions]
        async with trio.open_nursery() as nursery:
            while trio.current_time() < until:
                (_, action) = self.rng.choices(actions, weights)[0]
                self.report.actions[action.__name__] += 1
                nursery.start_soon(self._guarded, action)
                await trio.sleep(self.rng.uniform(0.0, 0.12))
            nursery.cancel_scope.cancel()

    async def _guarded(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        except RemoteError as exc:
            if exc.code == "internal":
                self.report.violations.append(f"{action.__name__}: internal error: {exc}")
            self.report.outcomes[f"error:{exc.code}"] += 1
        except (OSError, trio.TooSlowError, trio.BrokenResourceError, httpx.HTTPError, ValueError):
            self.report.outcomes["unanswered"] += 1

    async def new_fanout(self) -> None:
        self.shifts += 1
        n = self.shifts
        start = self.first_start + timedelta(hours=10 * n)
        shift_id = f"crash-{n}"
        await self.daemon.call(
            "shift.add",
            id=shift_id,
            role_required=ROLE,
            start_time=start.isoformat(),
            end_time=(start + timedelta(hours=8)).isoformat(),
        )
        answers = await _gather(
            [
                lambda: self.daemon.call("fanout", shift_id=shift_id)
                for _ in range(self.rng.randint(1, 4))
            ]
        )
        started = [a for a in answers if isinstance(a, dict) and a.get("status") == "started"]
        for a in answers:
            if isinstance(a, dict):
                self.report.outcomes[f"fanout:{a.get('status')}"] += 1
        if len(started) > 1:
            self.report.violations.append(f"{shift_id}: {len(started)} fanouts answered started")

    async def repeat_fanout(self) -> None:
        if not self.shifts:
            return
        shift_id = f"crash-{self.rng.randint(1, self.shifts)}"
        answer = await self.daemon.call("fanout", shift_id=shift_id)
        self.report.outcomes[f"fanout:{answer['status']}"] += 1
        if answer["status"] == "started" and await self.query(
            "SELECT 1 FROM events WHERE shift_id = ? AND kind = 'fanout_started'"
            " GROUP BY shift_id HAVING count(*) > 1",
            (shift_id,),
        ):
            self.report.violations.append(f"{shift_id}: a repeated fanout started it again")

    async def accept_storm(self) -> None:
        offers = await self._open_offers()
        if not offers:
            return
        shift_id = self.rng.choice(offers)[0]
        mine = [o for o in offers if o[0] == shift_id]
        takers = self.rng.sample(mine, min(len(mine), self.rng.randint(2, 4)))
        await _gather([self._texter(phone, f"YES {code}") for _, phone, code in takers])

    async def decline(self) -> None:
        offers = await self._open_offers()
        if offers:
            _, phone, code = self.rng.choice(offers)
            await self._text(phone, f"NO {code}")

    async def release(self) -> None:
        held = await self.query(
            "SELECT c.phone, o.code FROM shifts s JOIN caregivers c ON c.id = s.claimed_by"
            " JOIN offers o ON o.shift_id = s.id AND o.caregiver_id = s.claimed_by"
            " WHERE s.state = 'filled'"
        )
        if held:
            phone, code = self.rng.choice(held)
            await self._text(phone, f"RELEASE {code}", webhook=False)

    async def stop_or_start(self) -> None:
        phone = self.rng.choice(self.phones)
        stopped = self.ledger.stop_asked.get(phone, -math.inf)
        out = stopped > self.ledger.start_asked.get(phone, -math.inf)
        await self._text(phone, "START" if out else "STOP")

    async def provider_fault(self) -> None:
        fault = self.rng.choice(("429", "500", "slow"))
        self.report.provider[f"planned_{fault}"] += 1
        if fault == "slow":
            self.fake.slow_next(1.5)  # past the notifier's 1 s request timeout
        else:
            self.fake.fail_next(int(fault), times=self.rng.randint(1, 3), retry_after="0.2")

    def _texter(self, phone: str, body: str) -> Callable[[], Awaitable[None]]:
        return lambda: self._text(phone, body)

    async def _text(self, phone: str, body: str, *, webhook: bool | None = None) -> None:
        """A caregiver's text, through the socket or as a signed webhook (at random). A
        phone's STOP and START go one at a time, so the ledger knows which took effect."""
        intent = body.split()[0].upper()
        if intent not in ("STOP", "START"):
            await self._send_text(phone, body, intent, webhook)
            return
        async with self._keywords.setdefault(phone, trio.Lock()):
            book = self.ledger.stop_asked if intent == "STOP" else self.ledger.start_asked
            book[phone] = trio.current_time()
            await self._send_text(phone, body, intent, webhook)

    async def _send_text(self, phone: str, body: str, intent: str, webhook: bool | None) -> None:
        asked = trio.current_time()
        if webhook is None:
            webhook = self.rng.random() < 0.5
        if webhook:
            response = await self.fake.reply_sms(phone, body, self.webhook_base)
            if response.status_code != 200:
                self.report.violations.append(
                    f"webhook {body!r} answered {response.status_code}: {response.text[:200]}"
                )
                return
            sid = next(
                post.form["MessageSid"]
                for post in reversed(self.fake.webhooks)
                if post.form.get("From") == phone and post.form.get("Body") == body
            )
            self.webhooks.append(_Webhook(sid, phone, intent, asked, trio.current_time()))
            return
        inbound: dict[str, Any] = {"from": phone, "body": body}  # `from` is a keyword
        answer = await self.daemon.call("inbound", **inbound)
        self._answered(
            answer["outcome"],
            answer.get("shift_id"),
            answer.get("caregiver_id"),
            phone,
            asked,
            trio.current_time(),
        )

    def _answered(
        self,
        outcome: str,
        shift_id: str | None,
        cg: str | None,
        phone: str,
        asked: float,
        at: float,
    ) -> None:
        self.report.outcomes[outcome] += 1
        if outcome == "claimed" and shift_id and cg:
            self.ledger.claims.append((shift_id, cg))
        elif outcome == "declined" and shift_id and cg:
            self.ledger.declines.add((shift_id, cg))
        elif outcome == "released" and shift_id and cg:
            self.ledger.releases.add((shift_id, cg))
        elif outcome in ("opted_out", "opted_in"):
            self.ledger.answered("stop" if outcome == "opted_out" else "start", phone, asked, at)

    async def resolve_webhooks(self) -> list[str]:
        """Take the outcome of each answered webhook from the store; a webhook answered 200
        whose inbound record is missing is a violation (it was answered, so committed)."""
        problems = []
        for hook in self.webhooks[self.resolved :]:
            found = await self.query(
                "SELECT outcome, shift_id, caregiver_id FROM inbound WHERE provider_id = ?",
                (hook.sid,),
            )
            if not found:
                problems.append(
                    f"webhook {hook.intent} from …{hook.phone[-4:]} answered, not stored"
                )
                continue
            outcome, shift_id, cg = found[0]
            self._answered(outcome, shift_id, cg, hook.phone, hook.asked_at, hook.answered_at)
        self.resolved = len(self.webhooks)
        return problems


async def _gather(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run `calls` at once; each one's result or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int) -> None:
        try:
            results[i] = await calls[i]()
        except Exception as exc:
            results[i] = exc

    async with trio.open_nursery() as nursery:
        for i in range(len(calls)):
            nursery.start_soon(one, i)
    for r in results:
        if isinstance(r, RemoteError | OSError | trio.TooSlowError | httpx.HTTPError):
            raise r
    return results


class CrashLoop:
    def __init__(self, settings: CrashSettings, workdir: Path) -> None:
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.report = CrashReport(seed=settings.seed, workdir=str(workdir))
        self.daemon = Daemon(workdir, settings.python)
        self.fake = FakeTwilio(account_sid=ACCOUNT_SID)
        self.work = Workload(self.daemon, self.fake, self.rng, self.report)
        self.ready_at: datetime | None = None
        self.seen: set[str] = set()

    def provider_log(self) -> list[ProviderRequest]:
        return [
            ProviderRequest(r.at, r.kind, r.form.get("To", ""), r.form.get("Body"), r.sid)
            for r in self.fake.requests
            if r.accepted and r.kind in ("message", "call")
        ]

    async def check(self, when: str, *, running: bool) -> None:
        found = await self.work.resolve_webhooks()
        provider = self.provider_log()  # before the store, `made` after it: see `check`
        try:
            view = await trio.to_thread.run_sync(StoreView.load, self.daemon.db)
        except sqlite3.Error as exc:
            self.report.violations.append(f"{when}: the store cannot be read: {exc}")
            return
        made = {r.sid for r in self.fake.requests if r.sid is not None}
        found += await trio.to_thread.run_sync(
            functools.partial(
                check,
                view,
                self.work.ledger,
                provider,
                delay=timedelta(seconds=self.s.escalation_delay),
                now=datetime.now(UTC),
                ready_at=self.ready_at if running else None,
                due_bound=timedelta(seconds=self.s.due_bound),
                made=made,
                send_grace=self.s.send_grace,
            )
        )
        for violation in found:  # each once, with the first check that saw it
            if violation not in self.seen:
                self.seen.add(violation)
                self.report.violations.append(f"{when}: {violation}")
                if self.s.progress:
                    print(f"  VIOLATION {when}: {violation}", flush=True)

    async def restart(self) -> None:
        """Start the daemon; measure until it answers, and until the waves due when it was
        started have run (its recovery runs them: their lag counts from the start)."""
        before = await self._interrupted()
        due = await self._due_waves(datetime.now(UTC))
        started = trio.current_time()
        await self.daemon.spawn()
        seconds = await self.daemon.wait_answering(self.s.restart_bound)
        self.ready_at = datetime.now(UTC)
        self.report.restart_seconds.append(seconds)
        if before is not None:
            after = await self._interrupted()
            self.report.cost.append((after or 0) - before)
        await self.wait_due(due, started)

    async def _interrupted(self) -> int | None:
        rows = await self.work.query(
            "SELECT count(*) FROM outbox WHERE state = 'failed' AND error LIKE 'interrupted%'"
        )
        return rows[0][0] if rows else None

    async def _due_waves(self, by: datetime) -> dict[str, int]:
        """shift → the step of its wave due at `by` (not run yet)."""
        return {
            shift_id: step
            for shift_id, step, plan, at in await self.work.query(
                "SELECT id, next_step, plan, escalate_at FROM shifts"
                " WHERE state IN ('offering', 'escalated')"
            )
            if plan and step < len(json.loads(plan)) and at <= _iso(by)
        }

    async def wait_due(self, due: dict[str, int], since: float) -> None:
        """Wait until every wave in `due` has run; the time from `since` is a figure, past
        `due_bound` a violation."""
        if not due:
            return
        with trio.move_on_at(since + self.s.due_bound) as waited:
            while due:
                for shift_id, step, state in await self.work.query(
                    "SELECT id, next_step, state FROM shifts"
                ):
                    if shift_id in due and (
                        step > due[shift_id] or state not in ("offering", "escalated")
                    ):
                        del due[shift_id]
                if due:
                    await trio.sleep(0.02)
        if waited.cancelled_caught:
            self.report.violations.append(
                f"waves still not run {self.s.due_bound}s after restart: {sorted(due)}"
            )
        self.report.due_lag.append(trio.current_time() - since)

    async def run(self) -> CrashReport:
        began = trio.current_time()
        async with trio.open_nursery() as nursery:
            api_base = await nursery.start(self.fake.serve, "127.0.0.1", 0)
            http_port = _free_port()
            self.work.webhook_base = f"http://127.0.0.1:{http_port}"
            self.daemon.write_config(
                api_base=api_base, http_port=http_port, delay=self.s.escalation_delay
            )
            await self.restart()
            await self.work.setup(self.s.caregivers)
            while self.report.kills < self.s.kills:
                await self.one_kill()
            await self.finish()
            nursery.cancel_scope.cancel()
        self.report.elapsed = trio.current_time() - began
        accepted = self.provider_log()
        self.report.provider["texts_accepted"] = sum(p.kind == "message" for p in accepted)
        self.report.provider["calls_accepted"] = sum(p.kind == "call" for p in accepted)
        return self.report

    async def one_kill(self) -> None:
        if self.s.progress and self.report.kills and self.report.kills % 25 == 0:
            print(
                f"  {self.report.kills} kills, {len(self.report.violations)} violations,"
                f" {sum(self.report.cost)} messages lost so far",
                flush=True,
            )
        kill_at = trio.current_time() + self.rng.uniform(0.05, self.s.longest_round)
        await self.work.drive(kill_at)
        await self.daemon.kill9()
        self.report.kills += 1
        n = self.report.kills
        await self.check(f"after kill {n}", running=False)
        if self.rng.random() < self.s.startup_kill_rate and self.report.kills < self.s.kills:
            await self.daemon.spawn()
            await trio.sleep(self.rng.uniform(0.0, 0.8))
            await self.daemon.kill9()
            self.report.kills += 1
            self.report.startup_kills += 1
        await self.restart()
        await self.check(f"restart {n}", running=True)

    async def finish(self) -> None:
        """Let due waves and sends finish, check once more, stop with SIGTERM."""
        await trio.sleep(self.s.escalation_delay + 0.5)
        await self.wait_due(await self._due_waves(datetime.now(UTC)), trio.current_time())
        with trio.move_on_after(self.s.due_bound):
            while True:  # polling another process's store: no event to wait on
                busy = "SELECT 1 FROM outbox WHERE state IN ('pending', 'sending') LIMIT 1"
                if not await self.work.query(busy):
                    break
                await trio.sleep(0.1)
        await self.check("at the end", running=True)
        self.report.final_exit = await self.daemon.terminate()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_crash_loop(settings: CrashSettings) -> CrashReport:
    """Run the loop (inside its own `trio.run`); the report. The work directory is removed
    after a run without violations unless `settings.workdir` was given."""
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="shiftd-crash-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    loop = CrashLoop(settings, workdir)
    try:
        report = trio.run(loop.run)
    finally:
        if loop.daemon.alive:
            assert loop.daemon.proc is not None
            loop.daemon.proc.kill()
    if report.ok and settings.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shiftd.testing.crashloop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, help="replay a run (default: a fresh one, printed)")
    parser.add_argument("--workdir", type=Path, help="keep the daemon's state here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    print(f"crash loop: seed {seed}, {args.kills} kills (replay: --seed {seed})", flush=True)
    report = run_crash_loop(
        CrashSettings(kills=args.kills, seed=seed, workdir=args.workdir, progress=True)
    )
    print(report.summary())
    if not report.ok or args.workdir:
        print(f"  state kept in {report.workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
