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
    from .simulate.command import add_arguments

    simulate = commands.add_parser("simulate", help="compare policies on a month of shifts")
    add_arguments(simulate)
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
        case "simulate":
            from .simulate.command import run as simulate

            return simulate(args)
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
    """Validate ``path``: problems → stderr, exit 2. A valid file exits 0 after printing, to
    stderr, a ``FILE:LINE: key.path: warning: …`` line for each text that needs more than one
    SMS segment, then the ``ok`` line to stdout."""
    from .config import key_line

    config = _load(path)
    if config is None:
        return 2
    warnings = _text_warnings(config)
    located = sorted((key_line(path, loc), ".".join(map(str, loc)), what) for loc, what in warnings)
    for line, where, what in located:
        print(f"{path}:{line}: {where}: warning: {what}", file=sys.stderr)
    delay = int(config.escalation.delay.total_seconds())
    noted = f"; {len(located)} warning{'' if len(located) == 1 else 's'}" if located else ""
    print(f"{path}: ok (notifier {config.notifier.kind}, escalation after {delay}s{noted})")
    return 0


def _text_warnings(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """(key path, warning) for every SMS text an organization would send, in each built-in
    language, that cannot go whole in one segment at the real maximum lengths (see
    `messages.template_warnings`), each blamed on the key that sets it: its template, else
    the agency name the built-in text is rendered with (``organizations.<org>.name`` or
    ``agency_name``).

    An organization without a key of its own takes ``organizations.default``'s, template by
    template; a shift whose organization has no entry at all uses ``default`` (or the
    top level) alone.
    """
    from .messages import DEFAULT_LANGUAGE, LANGUAGES, template_warnings
    from .messages.sms import segments

    default = config.organizations.get("default")
    out: dict[tuple[tuple[str, ...], str], None] = {}  # ordered, without repeats
    for org_id in (None, *config.organizations):
        layers = [] if org_id is None else [(org_id, config.organizations[org_id])]
        if default is not None and org_id != "default":
            layers.append(("default", default))
        name = config.agency_name
        name_loc: tuple[str, ...] = ("agency_name",)
        org_language = DEFAULT_LANGUAGE
        for key, layer in reversed(layers):
            if layer.name is not None:
                name, name_loc = layer.name, ("organizations", key, "name")
            org_language = layer.language or org_language
        for language in LANGUAGES:
            templates: dict[str, str] = {}
            source: dict[str, tuple[str, ...]] = {}
            for key, layer in reversed(layers):
                if language == (layer.language or org_language):
                    for template in layer.templates:
                        source[template] = ("organizations", key, "templates", template)
                    templates.update(layer.templates)
                own = layer.templates_by_language.get(language, {})
                for template in own:
                    source[template] = (
                        "organizations",
                        key,
                        "templates_by_language",
                        language,
                        template,
                    )
                templates.update(own)
            for template, warning in template_warnings(templates, name, language):
                loc: tuple[str, ...]
                if template in source:
                    loc, what = source[template], warning
                else:
                    loc, what = name_loc, f"built-in {language} {template} text {warning}"
                mine = ("organizations", org_id)
                if name_loc[:2] == mine and loc[:2] != mine:  # another key's text, this name
                    what = f"with organization {org_id}'s name, {what}"
                out[loc, what] = None
        for key, layer in layers:
            if layer.help_text is not None:
                cost = segments(layer.help_text)
                if cost.count > 1:
                    loc = ("organizations", key, "help_text")
                    what = f"is {len(layer.help_text)} characters: {cost.explain()}; sent cut"
                    out[loc, what] = None
                break
    return list(out)


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
