"""What the models alone cannot see: steps out of order, undeclared tags, email without smtp."""

from __future__ import annotations

from datetime import timedelta

from .problems import Loc
from .schema import Config


def _show(delay: timedelta) -> str:
    """A duration as written in the file: "5m", "1h30m", "0s"."""
    seconds = int(delay.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds // 60 % 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def policy_problems(config: Config) -> list[tuple[Loc, str]]:
    """What the models alone cannot see: steps out of order, tags nobody declared."""
    problems: list[tuple[Loc, str]] = []
    if config.cluster is not None and config.store.url is None:
        problems.append((("cluster",), "a cluster needs a PostgreSQL store (store.url)"))
    if config.cluster is not None and config.control.request_timeout <= config.cluster.forward_wait:
        problems.append(
            (
                ("control", "request_timeout"),
                f"must be longer than cluster.forward_wait ({_show(config.cluster.forward_wait)}):"
                " a forwarded request would be cut before its owner's answer",
            )
        )
    declared = set(config.caregiver_tags)
    for org_id, org in config.organizations.items():
        if org.coordinator is not None and org.coordinator.email and config.smtp is None:
            loc: Loc = ("organizations", org_id, "coordinator", "email")
            problems.append((loc, "email needs an smtp section (the server to send through)"))
        if org.policy is not None and not org.policy:
            problems.append((("organizations", org_id, "policy"), "a policy needs a step"))
        previous = timedelta(0)
        for index, step in enumerate(org.policy or ()):
            loc = ("organizations", org_id, "policy", index)
            if step.at < previous:
                problems.append(
                    (
                        (*loc, "at"),
                        f"steps must be in order: {_show(step.at)} comes after {_show(previous)}",
                    )
                )
            previous = max(previous, step.at)
            if step.audience == "offered" and index == 0:
                problems.append(
                    ((*loc, "audience"), "the first step has nobody offered yet to contact")
                )
            for tag in step.tags:
                if tag not in declared:
                    known = ", ".join(sorted(declared)) or "none declared"
                    problems.append(
                        ((*loc, "tags"), f"unknown tag {tag!r} (caregiver_tags: {known})")
                    )
    return problems
