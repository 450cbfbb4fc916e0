"""The fake Twilio's REST side: what it records, the faults it plays on demand, its API.

`FakeTwilio` (`shiftd.testing.fakeprovider`) adds the caregivers' side on top.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
API_VERSION = "2010-04-01"

Kind = Literal["message", "call", "other"]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request the fake received, as it received it."""

    at: float
    """`trio.current_time()` when it arrived (virtual under MockClock)."""
    method: str
    path: str
    kind: Kind
    form: dict[str, str]
    """The form fields (for a repeated key, the last value)."""
    auth_ok: bool
    status: int
    """The status the fake answered (or is answering, for a slow answer)."""
    sid: str | None
    """The sid of the message or call it created (2xx only)."""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class WebhookPost:
    """One webhook the fake posted to shiftd, and shiftd's answer."""

    at: float
    url: str
    signed_url: str
    form: dict[str, str]
    status: int
    text: str


@dataclass(slots=True)
class _Plan:
    status: int | None  # None: answer normally
    delay: float = 0.0
    retry_after: str | None = None
    code: int | None = None
    message: str | None = None
    kind: Kind | None = None  # None: the next message or call


@dataclass
class FakeTwilioApi:
    """The fake provider's API: its account, what it saw, its faults, its routes."""

    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = field(default=DEFAULT_AUTH_TOKEN, repr=False)
    latency: float = 0.0
    """Seconds every answer takes (on Trio's clock), on top of `slow_next`."""
    requests: list[ApiRequest] = field(default_factory=list)
    webhooks: list[WebhookPost] = field(default_factory=list)
    base_url: str | None = None
    """Where `serve` listens, once started (`http://127.0.0.1:PORT`)."""
    _plans: list[_Plan] = field(default_factory=list, repr=False)
    _seq: dict[str, int] = field(default_factory=dict, repr=False)
    _actions: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        accounts = "/2010-04-01/Accounts/{account}"
        self.app = Starlette(
            routes=[
                Route(f"{accounts}/Messages.json", self._messages, methods=["POST"]),
                Route(f"{accounts}/Calls.json", self._calls, methods=["POST"]),
                Route("/{rest:path}", self._other, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )

    # ---- what it saw -----------------------------------------------------------------------

    @property
    def messages(self) -> list[ApiRequest]:
        """Messages it accepted (created), in arrival order."""
        return [r for r in self.requests if r.kind == "message" and r.accepted]

    @property
    def calls(self) -> list[ApiRequest]:
        """Calls it accepted (created), in arrival order."""
        return [r for r in self.requests if r.kind == "call" and r.accepted]

    def to(self, phone: str, kind: Kind = "message") -> list[ApiRequest]:
        """Accepted messages (or calls) to `phone`."""
        return [
            r for r in self.requests if r.kind == kind and r.accepted and r.form.get("To") == phone
        ]

    def find(self, sid: str) -> ApiRequest | None:
        """The request that created `sid`."""
        return next((r for r in self.requests if r.sid == sid), None)

    # ---- misbehaving on demand ---------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        retry_after: str | float | None = None,
        code: int | None = None,
        message: str | None = None,
        kind: Kind | None = None,
    ) -> None:
        """Answer the next `times` messages/calls (or only those of `kind`) with `status`,
        a Twilio error body (`code`, `message`) and, if given, a `Retry-After` header. Nothing
        is created. Plans are used in the order they were made."""
        after = None if retry_after is None else str(retry_after)
        for _ in range(times):
            self._plans.append(_Plan(status, 0.0, after, code, message, kind))

    def slow_next(self, seconds: float, *, times: int = 1, kind: Kind | None = None) -> None:
        """Take the next `times` messages/calls (they are created and count as sent) but
        answer only after `seconds` on Trio's clock."""
        for _ in range(times):
            self._plans.append(_Plan(None, seconds, kind=kind))

    # ---- serving -------------------------------------------------------------------------

    def transport(self) -> httpx.ASGITransport:
        """An httpx transport that calls the fake in-process (no socket, no timeouts)."""
        return httpx.ASGITransport(app=self.app)

    @property
    def api_base(self) -> str:
        """`api_base` for shiftd's notifier when served (the in-process transport ignores it)."""
        return self.base_url or "http://fake-twilio.test"

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on `host:port` (0: a free port) with hypercorn until cancelled; reports the
        base URL (`http://127.0.0.1:PORT`) through `task_status`."""
        from hypercorn.config import Config as HypercornConfig
        from hypercorn.trio import serve as hypercorn_serve

        config = HypercornConfig()
        config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
        config.loglevel = "WARNING"
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            # Starlette types ASGI messages as MutableMapping, hypercorn as TypedDicts: the
            # same dicts, but the two signatures do not meet.
            serve = functools.partial(hypercorn_serve, self.app, config, mode="asgi")  # type: ignore[arg-type]
            binds = await nursery.start(serve)
            self.base_url = binds[0]
            task_status.started(self.base_url)

    # ---- the API ---------------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        return await self._create(request, "message")

    async def _calls(self, request: Request) -> Response:
        return await self._create(request, "call")

    async def _other(self, request: Request) -> Response:
        form = await _form(request)
        self._record(request, "other", form, self._authorized(request), 404, None)
        return _error(404, 20404, "The requested resource was not found")

    async def _create(self, request: Request, kind: Kind) -> Response:
        form = await _form(request)
        auth_ok = self._authorized(request)
        if not auth_ok:
            self._record(request, kind, form, False, 401, None)
            return _error(
                401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        plan = self._take_plan(kind)
        delay = self.latency + (plan.delay if plan else 0.0)
        if plan is not None and plan.status is not None:
            self._record(request, kind, form, True, plan.status, None)
            await _sleep(delay)
            headers = {"Retry-After": plan.retry_after} if plan.retry_after is not None else None
            default = "Too Many Requests" if plan.status == 429 else "Internal Server Error"
            code = plan.code if plan.code is not None else (20429 if plan.status == 429 else 20500)
            return _error(plan.status, code, plan.message or default, headers)
        missing = _missing(form, kind)
        if missing is not None:
            self._record(request, kind, form, True, 400, None)
            await _sleep(delay)
            return _error(400, *missing)
        sid = self._new_sid("SM" if kind == "message" else "CA")
        self._record(request, kind, form, True, 201, sid)
        await _sleep(delay)
        return JSONResponse(self._resource(kind, sid, form), status_code=201)

    def _resource(self, kind: Kind, sid: str, form: dict[str, str]) -> dict[str, Any]:
        collection = "Messages" if kind == "message" else "Calls"
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "status": "queued",
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/{collection}/{sid}.json",
        }
        if kind == "message":
            resource.update(body=form.get("Body"), num_segments="1", error_code=None)
        return resource

    def _authorized(self, request: Request) -> bool:
        if request.path_params.get("account", self.account_sid) != self.account_sid:
            return False
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), self.account_sid.encode())
        return user_ok & hmac.compare_digest(password.encode(), self.auth_token.encode())

    def _take_plan(self, kind: Kind) -> _Plan | None:
        for index, plan in enumerate(self._plans):
            if plan.kind is None or plan.kind == kind:
                return self._plans.pop(index)
        return None

    def _record(
        self,
        request: Request,
        kind: Kind,
        form: dict[str, str],
        auth_ok: bool,
        status: int,
        sid: str | None,
    ) -> None:
        self.requests.append(
            ApiRequest(
                trio.current_time(),
                request.method,
                request.url.path,
                kind,
                form,
                auth_ok,
                status,
                sid,
            )
        )

    def _new_sid(self, prefix: str, *, inbound: bool = False) -> str:
        key = prefix + ("-in" if inbound else "")
        self._seq[key] = self._seq.get(key, 0) + 1
        number = self._seq[key] + (0xF << 124 if inbound else 0)
        return f"{prefix}{number:032x}"

    def _our_number_for(self, phone: str) -> str:
        sent = self.to(phone)
        if sent:
            return sent[-1].form.get("From", "")
        return next((r.form["From"] for r in self.messages if "From" in r.form), "+15550100001")

    def _call_form(self, call_sid: str, status: str) -> dict[str, str]:
        call = self.find(call_sid)
        ours = call.form.get("From", "") if call else ""
        theirs = call.form.get("To", "") if call else ""
        return {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "From": ours,
            "To": theirs,
            "Caller": ours,
            "Called": theirs,
            "CallStatus": status,
            "Direction": "outbound-api",
            "ApiVersion": API_VERSION,
        }


async def _form(request: Request) -> dict[str, str]:
    if request.method != "POST":
        return {}
    try:
        data = await request.form()
    except Exception:  # not a form: recorded as empty
        return {}
    return {key: str(value) for key, value in data.multi_items()}


def _missing(form: dict[str, str], kind: Kind) -> tuple[int, str] | None:
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not form.get("From"):
        return 21603, "A 'From' phone number is required."
    if kind == "message" and not form.get("Body"):
        return 21602, "Message body is required."
    if kind == "call" and not (form.get("Url") or form.get("Twiml")):
        return 21205, "Url or Twiml is required."
    return None


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        await trio.sleep(seconds)
