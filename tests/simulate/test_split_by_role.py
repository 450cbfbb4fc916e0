"""A run splits into one part per role; replayed alone on the whole run's clock, the parts
end exactly as the whole run does."""

from __future__ import annotations

from roles_month import month, night, roster

from shiftd.config import Config
from shiftd.models import Caregiver
from shiftd.simulate import Parameters, Policy
from shiftd.simulate.parts import merge, split
from shiftd.simulate.runner import run_once, span_of


def test_a_run_split_by_role_ends_exactly_as_the_whole_run(policy: Policy) -> None:
    caregivers, shifts = roster(), month()
    parts = split(policy.config, caregivers, shifts)
    assert len(parts) == 4  # RN (and rn), LPN, CNA, HHA
    whole = run_once(policy.config, caregivers, shifts, Parameters(), 11)
    clock = span_of(shifts)
    merged = merge(
        parts,
        [
            run_once(policy.config, p.caregivers, p.shifts, Parameters(), 11, span=clock)
            for p in parts
        ],
    )
    assert merged.shifts == whole.shifts  # every field of every shift, in the same order
    assert merged.contacts == whole.contacts
    assert sum(s.texts for s in merged.shifts) == sum(s.texts for s in whole.shifts) > 0
    assert sum(s.calls for s in merged.shifts) == sum(s.calls for s in whole.shifts) > 0
    assert any(s.time_to_fill for s in whole.shifts)  # not vacuous: shifts were filled


def test_roles_are_told_apart_as_the_roster_import_normalises_them() -> None:
    caregivers, shifts = roster(), month()
    parts = split(Config(), caregivers, shifts)
    roles = [
        ({c.role for c in p.caregivers}, {s.shift.role_required for s in p.shifts}) for p in parts
    ]
    assert roles == [
        ({"CNA"}, {"CNA"}),
        (set(), {"HHA"}),  # nobody to take them: they are a part all the same
        ({"LPN"}, {"LPN"}),
        ({"RN", "rn"}, {"RN", "rn"}),
    ]  # and the PT caregivers, with no shift to be offered, are in none
    assert sorted(s.shift.id for p in parts for s in p.shifts) == [s.shift.id for s in shifts]


def test_a_run_whose_import_would_drop_someone_is_not_split() -> None:
    caregivers, shifts = roster(), month()
    lpn = next(c for c in caregivers if c.role == "LPN")
    twin = Caregiver(id="cg-99", name="Twin", role="CNA", phone=lpn.phone)
    (part,) = split(Config(), [*caregivers, twin], shifts)
    assert len(part.caregivers) == len(caregivers) + 1 and len(part.shifts) == len(shifts)


def test_a_run_with_a_role_the_policy_does_not_know_is_not_split() -> None:
    caregivers, shifts = roster(), month()
    listed = Config.model_validate({"roles": ["RN", "LPN", "CNA", "HHA"]})  # no PT
    (part,) = split(listed, caregivers, shifts)
    assert part.caregivers == tuple(caregivers)


def test_a_run_split_by_role_ends_as_the_whole_run_when_held_calls_fall_due_together(
    policy: Policy,
) -> None:
    caregivers, shifts = roster(), night()
    whole = run_once(policy.config, caregivers, shifts, Parameters(), 5)
    parts = split(policy.config, caregivers, shifts)
    clock = span_of(shifts)
    merged = merge(
        parts,
        [
            run_once(policy.config, p.caregivers, p.shifts, Parameters(), 5, span=clock)
            for p in parts
        ],
    )
    assert merged.shifts == whole.shifts
    assert merged.contacts == whole.contacts
