"""Which methods each route takes, read from the app's own OpenAPI document, so a request
with another method is answered 405 with an `Allow` header listing exactly what the
document lists (plus HEAD wherever GET is served), before its body is looked at."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_PARAMETER = re.compile(r"\\\{[^/]+?\\\}")


class AllowedMethods:
    """`allowed(path)` → the methods documented for the path, or None for no such path.

    `openapi` is called once, on first use (the document is built lazily by FastAPI), and
    not kept afterwards."""

    def __init__(self, openapi: Callable[[], dict[str, Any]]) -> None:
        self._openapi: Callable[[], dict[str, Any]] | None = openapi
        self._routes: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def __call__(self, path: str) -> frozenset[str] | None:
        if self._openapi is not None:
            self._routes = _compile(self._openapi())
            self._openapi = None
        for pattern, methods in self._routes:
            if pattern.fullmatch(path):
                return methods
        return None


def _compile(document: dict[str, Any]) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    routes = []
    for template, operations in document.get("paths", {}).items():
        methods = {method.upper() for method in operations}
        if "GET" in methods:
            methods.add("HEAD")
        pattern = _PARAMETER.sub("[^/]+", re.escape(template))
        routes.append((re.compile(pattern), frozenset(methods)))
    return routes


def allow_header(methods: frozenset[str]) -> str:
    return ", ".join(sorted(methods))
