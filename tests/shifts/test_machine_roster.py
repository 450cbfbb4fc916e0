"""A role's roster as waves read it: the caregivers of some tags, and how many are free,
found the same as a pass over every caregiver would, in roster order."""

from __future__ import annotations

import itertools

from shiftd.shifts import machine
from shiftd.shifts.machine.facts import count_free, tagged

TAGS = ("north", "south", "peds")
ROSTER = machine.Roster(
    machine.Candidate(
        f"cg-{i:02d}", f"+1555000{i:04d}", TAGS[: i % 4] if i % 3 else TAGS[i % 3 :], None
    )
    for i in range(24)
)


def test_a_roster_finds_the_caregivers_of_any_of_the_tags_in_roster_order() -> None:
    plain = tuple(ROSTER)
    for n in range(len(TAGS) + 1):
        for tags in itertools.combinations((*TAGS, "unknown"), n):
            assert list(tagged(ROSTER, tags)) == list(tagged(plain, tags)), tags
    assert [c.id for c in tagged(ROSTER, ("peds",))] == [c.id for c in plain if "peds" in c.tags]


def test_a_roster_counts_those_not_busy_as_a_pass_over_them_does() -> None:
    plain = tuple(ROSTER)
    for busy in (set(), {"cg-03"}, {"cg-03", "cg-07", "not-on-the-roster"}, {c.id for c in plain}):
        assert (
            count_free(ROSTER, busy)
            == count_free(plain, busy)
            == sum(1 for c in plain if c.id not in busy)
        )
