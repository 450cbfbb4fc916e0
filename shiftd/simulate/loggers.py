"""The engine's loggers, built once for a simulated run instead of once per call.

shiftd configures structlog without caching loggers (tests and `shiftd demo` reconfigure
logging freely), so every `log.info(...)` or `log.bind(...)` on a module's logger builds a
logger first, even when the event is below the level and dropped. The engine does that
several times per message; a simulated month sends half a million. For the length of a
run the loggers are cached, and forgotten afterwards so that a later configuration
applies to them again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

_PROXY = type(structlog.get_logger())
"""What `get_logger` returns: a proxy building the real logger when it is used."""


@contextmanager
def cached_loggers(package: str = "shiftd") -> Iterator[None]:
    """Cache the loggers of `package`'s modules while the block runs (the configuration
    must not change meanwhile: it would not reach them). Afterwards, even on error or
    cancellation, they follow the configuration again."""
    saved = structlog.get_config()["cache_logger_on_first_use"]
    structlog.configure(cache_logger_on_first_use=True)
    try:
        yield
    finally:
        structlog.configure(cache_logger_on_first_use=saved)
        for proxy in _proxies(package):
            # A proxy that cached its logger did so by shadowing its `bind` method.
            vars(proxy).pop("bind", None)


def _proxies(package: str) -> Iterator[object]:
    for name, module in list(sys.modules.items()):
        if module is not None and (name == package or name.startswith(package + ".")):
            for value in list(vars(module).values()):
                if isinstance(value, _PROXY):
                    yield value
