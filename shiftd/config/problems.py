"""A configuration problem: its key path, its line, what is wrong; `ConfigError` holds them."""

from __future__ import annotations

from dataclasses import dataclass


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` holds one ``FILE:LINE: …`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems: list[str] = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


Loc = tuple[str | int, ...]
TOP = "(top level)"


@dataclass(frozen=True)
class Problem:
    line: int
    where: str
    what: str
