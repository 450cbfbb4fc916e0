"""A message's random draws come from its identity alone: the same on every run, machine
and process, whatever else was drawn before."""

from __future__ import annotations

import pytest

from shiftd.models import Channel
from shiftd.simulate.behaviour import rng_for


def test_a_message_draws_the_same_numbers_every_time() -> None:
    first = rng_for(7, "s-1", "cg-1", Channel.SMS, 0)
    again = rng_for(7, "s-1", "cg-1", Channel.SMS, 0)

    assert [first.random() for _ in range(8)] == [again.random() for _ in range(8)]


def test_another_message_draws_other_numbers() -> None:
    numbers = {
        rng_for(7, "s-1", "cg-1", channel, nth).random()
        for channel in (Channel.SMS, Channel.VOICE)
        for nth in (0, 1)
    }
    numbers.add(rng_for(8, "s-1", "cg-1", Channel.SMS, 0).random())

    assert len(numbers) == 5
    assert all(0.0 <= n < 1.0 for n in numbers)


def test_a_message_has_eight_draws() -> None:
    draws = rng_for(7, "s-1", "cg-1", Channel.SMS, 0)
    for _ in range(8):
        draws.random()

    with pytest.raises(IndexError):
        draws.random()
