"""Reading the YAML file: every problem as `FILE:LINE: key.path: problem`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .checks import policy_problems
from .locate import STR_TAG, dotted, kind_of, line_of, problem_from
from .problems import TOP, ConfigError, Loc, Problem
from .schema import Config

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the configuration file at ``path``.

    Raises:
        ConfigError: the file cannot be read (one problem ``FILE: cannot read: …``), is not
            UTF-8, or fails :func:`parse_config`.
    """
    filename = os.fsdecode(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{filename}: cannot read: not UTF-8 text ({exc.reason})"]) from None
    return parse_config(text, filename)


def parse_config(text: str, filename: str) -> Config:
    """Validate the YAML ``text`` (read from ``filename``, used only in messages).

    An empty document means all defaults.

    Raises:
        ConfigError: with every problem found, ordered by line, each formatted
            ``FILE:LINE: key.path: problem``.
    """
    root, data = _read_yaml(text, filename)
    problems = _key_problems(root, ())
    if not problems:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems = [Problem(1, TOP, f"expected a mapping of keys, got {kind_of(data)}")]
        else:
            try:
                config = Config.model_validate(data)
            except ValidationError as exc:
                problems = [problem_from(error, root) for error in exc.errors()]
            else:
                problems = [
                    Problem(line_of(root, loc), dotted(loc), what)
                    for loc, what in policy_problems(config)
                ]
                if not problems:
                    return config
    problems.sort(key=lambda p: p.line)
    raise ConfigError([f"{filename}:{p.line}: {p.where}: {p.what}" for p in problems])


def key_line(path: str | os.PathLike[str], loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the key path ``loc`` in the configuration file at ``path`` (of its
    deepest key present; 1 when the file cannot be read), for messages about a loaded
    configuration such as ``check-config``'s warnings."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        root, _ = _read_yaml(text, os.fsdecode(path))
    except (OSError, UnicodeDecodeError, ConfigError):
        return 1
    return line_of(root, loc)


def _read_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct one YAML document: its node tree (for line numbers) and its data.

    Raises:
        ConfigError: with one ``FILE:LINE: (yaml): problem`` for a syntax or construction error.
    """
    loader: yaml.SafeLoader | None = None
    root: yaml.Node | None = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        line, problem = _describe_yaml_error(exc)
        raise ConfigError([f"{filename}:{line}: (yaml): {problem}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            [f"{filename}:{line}: (yaml): {exc.reason} (#x{exc.character:04x})"]
        ) from None
    except ValueError as exc:  # e.g. an impossible date such as 2024-02-30
        line = _bad_timestamp_line(root)
        raise ConfigError([f"{filename}:{line}: (yaml): {exc}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The 1-based line where PyYAML noticed the problem, and the problem in words.

    PyYAML often notices late (an unclosed ``[`` at the end of the file), so the place the
    construct started (its *context*) is added with its own line.
    """
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        where = f", line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        problem += f" ({exc.context}{where})"
    return line, problem


def _bad_timestamp_line(root: yaml.Node | None) -> int:
    """Line of the first timestamp scalar under ``root`` that cannot be built (else 1)."""
    constructor = yaml.SafeLoader("")
    for node in _walk(root):
        if isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP_TAG:
            try:
                constructor.construct_yaml_timestamp(node)
            except ValueError:
                return node.start_mark.line + 1
    return 1


def _walk(root: yaml.Node | None) -> list[yaml.Node]:
    """Every node under ``root`` once, in document order (aliases and cycles visited once)."""
    seen: set[int] = set()
    out: list[yaml.Node] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return out


def _key_problems(node: yaml.Node | None, loc: Loc, seen: set[int] | None = None) -> list[Problem]:
    """Keys that are not plain strings, and keys repeated in one mapping (YAML keeps the last)."""
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:
        return []
    seen.add(id(node))
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.tag == _MERGE_TAG:
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != STR_TAG:
                raw = key.value if isinstance(key, yaml.ScalarNode) else "?"
                what = f"keys must be strings; YAML reads this key as {key.tag.rsplit(':', 1)[-1]}"
                problems.append(Problem(line, dotted((*loc, raw)), what + ": quote it"))
                continue
            if key.value in first_line:
                what = f"duplicate key (first at line {first_line[key.value]})"
                problems.append(Problem(line, dotted((*loc, key.value)), what))
            first_line.setdefault(key.value, line)
            problems += _key_problems(value, (*loc, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _key_problems(item, (*loc, index), seen)
    return problems
