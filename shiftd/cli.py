"""`shiftd`: run the daemon, check a configuration, or play the demo.

Exit codes: 0 success; 1 the daemon could not start or failed; 2 usage or configuration
errors (printed as `file:line: key.path: problem`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from . import __version__

if TYPE_CHECKING:
    from .config import Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shiftd", description="Fills open shifts, fast.")
    parser.add_argument("--version", action="version", version=f"shiftd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--config", "-c", type=Path, required=True, metavar="FILE")
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path, metavar="FILE")
    demo = commands.add_parser("demo", help="play a morning of shift filling on a virtual clock")
    demo.add_argument("--log", action="store_true", help="also show the engine's own log lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    match args.command:
        case "run":
            return _run(args.config)
        case "check-config":
            return _check(args.file)
        case "demo":
            from .demo import run_demo

            return run_demo(show_log=args.log)
    return 2


def _load(path: Path) -> Config | None:
    """The configuration, or None after printing its problems to stderr."""
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _check(path: Path) -> int:
    config = _load(path)
    if config is None:
        return 2
    delay = int(config.escalation.delay.total_seconds())
    print(f"{path}: ok (notifier {config.notifier.kind}, escalation after {delay}s)")
    return 0


def _run(path: Path) -> int:
    from .control.server import ControlSocketError
    from .credentials import CredentialError
    from .daemon import StateDirBusy, run_daemon
    from .http.server import HttpStartError
    from .logs import configure_logging, get_logger
    from .store.base import StoreError

    config = _load(path)
    if config is None:
        return 2
    configure_logging(config.log.level, config.log.format)
    log = get_logger("shiftd.cli")
    failures: list[BaseException] = []
    try:
        trio.run(run_daemon, config, path)
    except* (
        StateDirBusy,
        StoreError,
        ControlSocketError,
        HttpStartError,
        CredentialError,
        ValueError,
    ) as group:
        failures.extend(_leaves(group))
    for exc in failures:
        log.error("daemon.start_failed", error=str(exc))
        print(f"shiftd: {exc}", file=sys.stderr)
    return 1 if failures else 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


if __name__ == "__main__":
    sys.exit(main())
