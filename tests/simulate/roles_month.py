"""A small month of several roles for the simulator's tests, posted in the daytime.

Roles: RN (caregivers and shifts spelled "RN" and "rn", one role to the engine), LPN, CNA,
HHA (shifts, nobody to take them) and PT (caregivers, no shifts). Five shifts in a row start
together, two of them RN: an RN who holds one may not take the other. Shifts of different
roles are posted together now and then.

`night` posts a role's shifts together at night instead: a policy's calls about them are
held to the end of its quiet hours and fall due at the same instant, and the calls to one
phone are spaced `escalation.call_gap` apart, in the order the engine's actors run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shiftd.models import Caregiver, Shift
from shiftd.simulate import SimShift

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
POLICIES = ("policy-text-everyone.yaml", "policy-preferred-first.yaml")
"""The example policies, under whose time zone (New York) the month is posted."""
# 09:00 in New York, the example policies' time zone: posted in the day, a policy's calls
# are not held back to the end of its quiet hours (where they would all fall due together).
FIRST_POSTED = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
ROSTER_ROLES = ["RN", "RN", "rn", "rn", "RN", "LPN", "LPN", "LPN", "CNA", "CNA", "CNA", "CNA"]
ROSTER_ROLES += ["PT", "PT"]
SHIFT_ROLES = ("RN", "LPN", "rn", "CNA", "HHA")  # neighbours are of different roles


def roster() -> list[Caregiver]:
    seen: set[str] = set()
    caregivers = []
    for n, role in enumerate(ROSTER_ROLES):
        first = role.upper() not in seen  # the first of each role is preferred
        seen.add(role.upper())
        caregivers.append(
            Caregiver(
                id=f"cg-{n:02d}",
                name=f"Caregiver {n}",
                role=role,
                phone=f"+1555040{n:04d}",
                tags=("preferred",) if first else (),
            )
        )
    return caregivers


def month(count: int = 30) -> list[SimShift]:
    shifts = []
    for k in range(count):
        role = SHIFT_ROLES[k % len(SHIFT_ROLES)]
        # Posted 7 minutes apart, but every sixth shift with the one before it (of another
        # role); five in a row start together (two of them RN).
        posted = FIRST_POSTED + timedelta(minutes=7 * (k - k // 6))
        day = FIRST_POSTED + timedelta(days=1 + (k // 10))
        start = day + timedelta(hours=(0, 8)[(k // 5) % 2])
        shift = Shift(
            id=f"s-{k:03d}",
            role_required=role,
            start_time=start,
            end_time=start + timedelta(hours=8),
        )
        shifts.append(SimShift(shift, posted))
    return shifts


def night(count: int = 12) -> list[SimShift]:
    """`count` shifts posted in threes of one role at 02:00 in New York (the example
    policies' quiet hours end at 07:00), starting the next evening."""
    posted = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
    shifts = []
    for k in range(count):
        role = SHIFT_ROLES[(k // 3) % len(SHIFT_ROLES)]
        start = posted + timedelta(hours=16 + k)
        shift = Shift(
            id=f"n-{k:03d}",
            role_required=role,
            start_time=start,
            end_time=start + timedelta(hours=8),
        )
        shifts.append(SimShift(shift, posted + timedelta(minutes=k // 3)))
    return shifts
