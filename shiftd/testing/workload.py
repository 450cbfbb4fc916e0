"""The crash run's workload: coordinators, caregivers and a faulty provider, all at random,
against one daemon or spread over a cluster's instances."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import trio

from ..models import FanoutStatus, Outcome
from .crashdaemon import Daemon, RemoteError
from .crashreport import CrashReport
from .fakeprovider import FakeTwilio
from .invariants import Ledger
from .storeread import StoreReader, StoreUnreadable

ROLE = "RN"


@dataclass
class _Webhook:
    sid: str
    phone: str
    intent: str
    asked_at: float
    answered_at: float


class Workload:
    """Coordinators and caregivers acting at random, each request through one of `daemons`
    (a running one, at random), reading what they need from `store`."""

    def __init__(
        self,
        daemons: Sequence[Daemon],
        store: StoreReader,
        fake: FakeTwilio,
        rng: random.Random,
        report: CrashReport,
    ) -> None:
        self.daemons = daemons
        self.store = store
        self.fake = fake
        self.rng = rng
        self.report = report
        self.ledger = Ledger()
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
        try:
            return await trio.to_thread.run_sync(self.store.rows, sql, params)
        except StoreUnreadable:
            return []

    @property
    def daemon(self) -> Daemon:
        """The instance the next request goes to: a running one at random (any, if none
        runs: the request then fails as a client's would)."""
        up = [d for d in self.daemons if d.up]
        return self.rng.choice(up or list(self.daemons))

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

    async def drive(self, until: float, *, drain: bool = False) -> None:
        """Start actions at random until `until` (Trio time); then cancel those still
        running, as a kill would, or with `drain` let them finish (each is bounded)."""
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
            if not drain:
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
        answers = await gather(
            [
                lambda: self.daemon.call("fanout", shift_id=shift_id)
                for _ in range(self.rng.randint(1, 4))
            ]
        )
        started = [
            a for a in answers if isinstance(a, dict) and a.get("status") == FanoutStatus.STARTED
        ]
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
        if answer["status"] == FanoutStatus.STARTED and await self.query(
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
        await gather([self._texter(phone, f"YES {code}") for _, phone, code in takers])

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
            base = self.daemon.webhook_base
            response = await self.fake.reply_sms(phone, body, base)
            if response.status_code == 503 and len(self.daemons) > 1:
                # The shift's owner did not answer in time (down, or changing hands): the
                # provider would retry; the text is kept and decided once, maybe later.
                self.report.outcomes["webhook:unavailable"] += 1
                return
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
        if outcome == Outcome.CLAIMED and shift_id and cg:
            self.ledger.claims.append((shift_id, cg))
        elif outcome == Outcome.DECLINED and shift_id and cg:
            self.ledger.declines.add((shift_id, cg))
        elif outcome == Outcome.RELEASED and shift_id and cg:
            self.ledger.releases.add((shift_id, cg))
        elif outcome in (Outcome.OPTED_OUT, Outcome.OPTED_IN):
            self.ledger.answered(
                "stop" if outcome == Outcome.OPTED_OUT else "start", phone, asked, at
            )

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


async def gather(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
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
