"""The words caregivers read and hear. Short (one SMS segment where possible), no client
names or health details: role, date, time window, how to answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from .store.base import ShiftRow


class Messages:
    """Renders every outbound text for one agency name and display time zone."""

    def __init__(self, agency: str, tz: tzinfo) -> None:
        self.agency = agency
        self.tz = tz

    def window(self, shift: ShiftRow) -> str:
        """e.g. "Wed Jul 2, 08:00-16:00" in the agency's time zone."""
        start, end = shift.start_time.astimezone(self.tz), shift.end_time.astimezone(self.tz)
        return f"{start:%a %b} {start.day}, {_hm(start)}-{_hm(end)}"

    def offer_sms(self, shift: ShiftRow, code: int) -> str:
        return (
            f"{self.agency}: open {shift.role_required} shift {self.window(shift)}. "
            f"Reply YES {code} to take it or NO {code} to pass."
        )

    def offer_voice(self, shift: ShiftRow) -> str:
        role = shift.role_required
        return (
            f"Hello, this is {self.agency}. {_article(role).capitalize()} {role} shift is open "
            f"on {self.window(shift)}. Press 1 to accept it, or 2 to decline."
        )

    def confirm(self, shift: ShiftRow) -> str:
        role, window = shift.role_required, self.window(shift)
        return f"{self.agency}: confirmed! The {role} shift {window} is yours."

    def filled(self, shift: ShiftRow) -> str:
        return (
            f"{self.agency}: the {shift.role_required} shift {self.window(shift)} has been "
            "filled. Thank you!"
        )

    def already_filled(self, shift: ShiftRow) -> str:
        return (
            f"{self.agency}: sorry, the {shift.role_required} shift {self.window(shift)} "
            "was already filled."
        )

    def no_longer_available(self, shift: ShiftRow) -> str:
        return (
            f"{self.agency}: the {shift.role_required} shift {self.window(shift)} "
            "is no longer available."
        )

    def declined(self, shift: ShiftRow) -> str:
        return f"{self.agency}: thanks, we won't call you about the shift {self.window(shift)}."

    def how_to_answer(self, shift: ShiftRow, code: int) -> str:
        return (
            f"{self.agency}: please reply YES {code} to take the shift {self.window(shift)} "
            f"or NO {code} to pass."
        )

    def choose(self, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        listed = "; ".join(f"{code}: {s.role_required} {self.window(s)}" for s, code in offers)
        return (
            f"{self.agency}: you have several open offers ({listed}). Reply YES <code> to take one."
        )

    def no_open_offer(self) -> str:
        return f"{self.agency}: you have no open shift offers right now."


def _article(role: str) -> str:
    """The article before `role` as it is read aloud: an RN, an LPN, an HHA, a CNA (an
    initialism is read letter by letter), an aide, a nurse."""
    if role.isupper():
        return "an" if role[:1] in "AEFHILMNORSX" else "a"
    return "an" if role[:1].lower() in "aeiou" else "a"


def _hm(at: datetime) -> str:
    return f"{at:%H:%M}"
