"""A roster import's checks and answer, around the store's upsert (`Engine.import_roster`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any, TypeVar

from .models import Caregiver, Shift
from .shifts.roles import Roles, UnknownRole
from .store.base import ImportCounts

ModelT = TypeVar("ModelT", Caregiver, Shift)


def with_roles(
    roles: Roles, caregivers: Sequence[Caregiver], shifts: Sequence[Shift]
) -> tuple[list[Caregiver], list[Shift], list[str]]:
    """The items with their roles as the roster spells them, and a problem naming each item
    whose role nobody knows (that item unchanged)."""
    problems: list[str] = []
    return (
        [
            _with_role(roles, c, "role", f"caregivers[{i}]", problems)
            for i, c in enumerate(caregivers)
        ],
        [
            _with_role(roles, s, "role_required", f"shifts[{i}]", problems)
            for i, s in enumerate(shifts)
        ],
        problems,
    )


def _with_role(roles: Roles, item: ModelT, field: str, where: str, problems: list[str]) -> ModelT:
    try:
        role = roles.normalize(getattr(item, field))
    except UnknownRole as exc:
        problems.append(f"{where}.{field}: {exc}")
        return item
    return item if role == getattr(item, field) else item.model_copy(update={field: role})


def unknown_fields(
    caregivers: Sequence[Caregiver], shifts: Sequence[Shift]
) -> list[dict[str, Any]]:
    """A warning for each field nobody knows (it is ignored)."""
    return [
        {"kind": kind, "index": i, "field": name, "message": "unknown field: ignored"}
        for kind, items in (("caregivers", caregivers), ("shifts", shifts))
        for i, item in enumerate(items)
        for name in item.model_extra or ()
    ]


def counts(counts: ImportCounts) -> dict[str, int]:
    """The numbers of an import's counts (created, updated...)."""
    return {f.name: getattr(counts, f.name) for f in fields(counts) if f.type == "int"}


def answer(cg: ImportCounts, sh: ImportCounts, *, dry_run: bool) -> dict[str, Any]:
    """The counts per kind; with `dry_run`, each change that would be made too."""
    # Not `asdict`: it deep-copies every change listed, thousands on a large import.
    out: dict[str, Any] = {
        "caregivers": {**counts(cg), "skipped": cg.skipped, "changes": cg.changes},
        "shifts": {**counts(sh), "skipped": sh.skipped, "changes": sh.changes},
    }
    del out["shifts"]["deactivated"]
    for part in out.values():
        if not dry_run:
            del part["changes"]
    return out
