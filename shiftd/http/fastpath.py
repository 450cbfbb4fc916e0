"""The busiest routes served without FastAPI's routing: the Twilio webhooks, a fanout and an
inbound message, by the very functions FastAPI declares (and documents) for them.

FastAPI's routing costs more CPU per webhook than the webhook's own work (bench/web.py). The
routes stay declared on the FastAPI app, so the OpenAPI document lists them and FastAPI
still serves whatever this module passes on.

`FastRoutes` sits where FastAPI's router sits: inside the counting and guard middleware
(`shiftd.http.middleware`), so the method, token, size, content-type, time-limit, crash and
metrics rules are the same code for every request. A request it serves is answered as
FastAPI would answer it: the same endpoint and dependency functions called in FastAPI's
order with the same arguments, the app's own exception handlers for what they raise, the
route's own response model for JSON answers, and `scope["route"]` set to the route, so the
metrics label is its template. Anything outside the plain case — another method, a trailing
slash, a root path, a path parameter or a body FastAPI would refuse, an organization's token
on an administrators' route — goes on to FastAPI untouched, body included, before any
side effect.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Response
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, HTTPExceptionHandler, Message, Receive, Scope, Send

from ..commands import InboundArgs
from . import rest, webhooks
from .context import context_of
from .middleware import ADMIN

_Serve = Callable[[Request, str], Awaitable[Response | None]]
"""Answers a request (given its path parameter, if any), or None: FastAPI is to answer it."""

FANOUT_PREFIX, FANOUT_SUFFIX = "/shifts/", "/fanout"
FANOUT = "{fanout}"
_SHIFT_ID_MAX = 128  # rest.ShiftId


class FastRoutes:
    """ASGI middleware in front of FastAPI's exception middleware and router; see the
    module docstring. `owner` is the FastAPI app whose exception handlers are used.

    A route is served here once FastAPI has served it once: the route FastAPI matched
    (`scope["route"]`, with its template and response model) is kept then, so this module
    never reads FastAPI's routing tables."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self._owner = owner
        self._serves: dict[Callable[..., Any], _Serve] = {
            webhooks.sms: _call_webhook(webhooks.sms),
            webhooks.voice: _call_webhook(webhooks.voice),
            webhooks.voice_gather: _call_webhook(webhooks.voice_gather),
            webhooks.status: _call_webhook(webhooks.status),
            rest.inbound: self._serve_inbound,
            rest.fanout: self._serve_fanout,
        }
        self._learnt: dict[str, APIRoute] = {}
        """Route by path, and the fanout route under FANOUT."""
        self._handlers: dict[Any, HTTPExceptionHandler] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        key, param = path, ""
        if path.startswith(FANOUT_PREFIX) and path.endswith(FANOUT_SUFFIX):
            param = path[len(FANOUT_PREFIX) : -len(FANOUT_SUFFIX)]
            if param and "/" not in param:
                key = FANOUT
        route = self._learnt.get(key)
        if route is None:
            await self.app(scope, receive, send)
            self._learn(key, scope.get("route"))
            return
        await self._serve(route, self._serves[route.endpoint], param, scope, receive, send)

    def _learn(self, key: str, route: Any) -> None:
        """Keep `route` (what FastAPI matched for `key`) if it is one this module serves."""
        if (
            isinstance(route, APIRoute)
            and route.methods == {"POST"}
            and route.endpoint in self._serves
            and (key == FANOUT) == (route.endpoint is rest.fanout)
        ):
            self._learnt[key] = route

    async def _serve(
        self,
        route: APIRoute,
        serve: _Serve,
        param: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """`serve` the request, mapping what it raises through the app's exception handlers
        as Starlette's exception middleware does; FastAPI's if `serve` declines it."""
        request = Request(scope, receive, send)
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        try:
            response = await serve(request, param)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:  # (the endpoints here never answer before they raise)
                raise
            handled = handler(request, exc)  # Starlette allows a plain function here
            response = await handled if isinstance(handled, Awaitable) else handled
            exc.__traceback__ = None  # handled; the instance may be reused
        if response is None:
            await self.app(scope, _replaying(request, receive), send)
            return
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> HTTPExceptionHandler | None:
        if self._handlers is None:
            self._handlers = {
                key: handler
                for key, handler in self._owner.exception_handlers.items()
                if key not in (500, Exception)  # those are the server-error middleware's
            }
        if isinstance(exc, HTTPException) and exc.status_code in self._handlers:
            return self._handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in self._handlers:
                return self._handlers[cls]
        return None

    # ---- the REST routes: FastAPI's dependency order, then the endpoint -------------------

    async def _serve_fanout(self, request: Request, shift_id: str) -> Response | None:
        if len(shift_id) > _SHIFT_ID_MAX:
            return None  # FastAPI's 422, in its words
        request.scope["path_params"] = {"shift_id": shift_id}
        await rest.require_token(request, await rest.bearer_scheme(request))
        await rest.own_shift(request, shift_id)
        answer = await rest.fanout(context_of(request), shift_id)
        return _json(request.scope["route"], answer)

    async def _serve_inbound(self, request: Request, _: str) -> Response | None:
        body = await request.body()
        if not body:
            return None
        await rest.require_token(request, await rest.bearer_scheme(request))
        if request.state.scope != ADMIN:
            return None  # FastAPI's 403, after the same token check
        try:
            args = InboundArgs.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            return None  # FastAPI's 400 or 422, in its words
        return _json(request.scope["route"], await rest.inbound(context_of(request), args))


def _call_webhook(endpoint: Callable[[Request], Awaitable[Response]]) -> _Serve:
    async def serve(request: Request, _: str) -> Response:
        return await endpoint(request)

    return serve


def _json(route: APIRoute, content: Any) -> Response:
    """`content` through the route's response model, as FastAPI's own fast path renders it
    (validated, then dumped to JSON bytes by pydantic)."""
    field = route.response_field
    assert field is not None
    value, errors = field.validate(content, {}, loc=("response",))
    if errors:
        # What FastAPI raises too: the guard answers it as an internal error.
        raise ResponseValidationError(errors=errors, body=content)
    body = field.serialize_json(
        value,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )
    if route.status_code is not None:
        return Response(body, status_code=route.status_code, media_type="application/json")
    return Response(body, media_type="application/json")


def _replaying(request: Request, receive: Receive) -> Receive:
    """`receive` for FastAPI, when this module has read the body already: the body again,
    once, then whatever the client sends (only a disconnect can follow)."""
    body: bytes | None = getattr(request, "_body", None)
    if body is None:
        return receive
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
