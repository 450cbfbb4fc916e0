"""From a validation error to the key it concerns, its line in the file and a hint."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from .problems import TOP, Loc, Problem
from .schema import Config

STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class _Target:
    """Where a pydantic error points, in the file's terms."""

    loc: Loc  # the key path as written in YAML (discriminated-union tags removed)
    owner: type[BaseModel] | None  # the model whose key is the last element of loc
    annotation: Any  # the type expected at loc, when known


def problem_from(error: Any, root: yaml.Node | None) -> Problem:
    """Turn one pydantic error into a located, operator-readable problem."""
    target = _target(error["loc"])
    loc, kind, ctx, value = target.loc, error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        what = "missing required key"
    elif kind == "extra_forbidden":
        allowed = ", ".join(target.owner.model_fields) if target.owner is not None else "?"
        what = f"unknown key (allowed: {allowed})"
    elif kind == "union_tag_invalid":
        loc = (*loc, _discriminator(ctx))
        what = f"unknown {loc[-1]} {ctx.get('tag')!r} (expected one of: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        loc = (*loc, _discriminator(ctx))
        what = f"missing required key (one of: {', '.join(_union_tags(target.annotation))})"
    elif kind == "value_error" and "error" in ctx:
        what = str(ctx["error"])
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        what = f"expected a mapping of keys, got {kind_of(value)}"
    elif kind in {"string_type", "path_type"}:
        what = f"expected a string, got {kind_of(value)}{_quoting_hint(value)}"
    else:
        what = error["msg"] + (f" (got {value!r})" if _is_scalar(value) else "")
    return Problem(line_of(root, loc), dotted(loc), what)


def _discriminator(ctx: dict[str, Any]) -> str:
    """The key that selects a union member, from a pydantic error context (``"'kind'"``)."""
    return str(ctx.get("discriminator", "kind")).strip("'")


def _target(raw_loc: Loc) -> _Target:
    """Follow a pydantic location through the models, dropping discriminated-union tags.

    Pydantic inserts the chosen member's tag into the location (``notifier.record.path``);
    the file has no such key, so it is removed (``notifier.path``).
    """
    loc: list[str | int] = []
    annotation: Any = Config
    owner: type[BaseModel] | None = None
    for element in raw_loc:
        annotation = _unwrap_optional(annotation)
        members = _model_union_members(annotation)
        if members:
            annotation = next((m for m in members if element in _tags_of(m)), None)
            continue
        loc.append(element)
        if get_origin(annotation) in (dict, tuple, list):
            # A mapping's key or a sequence's index: step into the value type.
            owner, annotation = (
                None,
                get_args(annotation)[-1 if get_origin(annotation) is dict else 0],
            )
            continue
        owner = annotation if _is_model(annotation) else None
        field = owner.model_fields.get(element) if owner and isinstance(element, str) else None
        annotation = field.annotation if field is not None else None
    return _Target(tuple(loc), owner, annotation)


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_union_members(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The members of a union made only of models (a discriminated union), else ``()``."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return ()
    members = get_args(annotation)
    return members if all(_is_model(m) for m in members) else ()


def _tags_of(model: type[BaseModel]) -> tuple[Any, ...]:
    """The ``Literal`` values a union member can be selected by."""
    return tuple(
        tag
        for field in model.model_fields.values()
        if get_origin(field.annotation) is Literal
        for tag in get_args(field.annotation)
    )


def _union_tags(annotation: Any) -> list[str]:
    return [str(tag) for member in _model_union_members(annotation) for tag in _tags_of(member)]


def line_of(root: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the deepest key of ``loc`` present in the document.

    A key that is absent (a missing required key) yields the line of its nearest parent key,
    or the document's first line.
    """
    if root is None:
        return 1
    line, node = root.start_mark.line + 1, root
    for element in loc:
        found = _child(node, element)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node, element: str | int) -> tuple[int, yaml.Node] | None:
    """The line of ``element``'s key (or list item) inside ``node``, and its value node."""
    if isinstance(node, yaml.MappingNode) and isinstance(element, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == STR_TAG and key.value == element:
                return key.start_mark.line + 1, value
    if isinstance(node, yaml.SequenceNode) and isinstance(element, int):
        items: list[yaml.Node] = node.value
        if 0 <= element < len(items):
            return items[element].start_mark.line + 1, items[element]
    return None


def dotted(loc: Loc) -> str:
    return ".".join(str(element) for element in loc) if loc else TOP


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def kind_of(value: object) -> str:
    """Describe a YAML value for a message: ``a list``, ``nothing``, ``the number 630`` …"""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _quoting_hint(value: object) -> str:
    if isinstance(value, bool):
        return " (YAML reads an unquoted yes/no/on/off/true/false as a boolean: quote it)"
    if isinstance(value, int | float):
        return " (quote it so YAML keeps it as text)"
    return ""
