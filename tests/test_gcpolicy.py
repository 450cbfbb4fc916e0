"""The daemon's collector policy: paused while the engine recovers, then what exists is
frozen and the collector resumes; on leaving, the collector is as it was."""

import gc
from collections.abc import Iterator

import pytest

from shiftd import gcpolicy


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_the_collector_is_paused_until_recovered() -> None:
    with gcpolicy.applied() as recovered:
        assert not gc.isenabled()
        recovered()
        assert gc.isenabled()
    assert gc.isenabled()


def test_recovered_freezes_what_exists() -> None:
    gc.unfreeze()
    with gcpolicy.applied() as recovered:
        recovered()
        assert gc.get_freeze_count() > 0


def test_survivors_are_frozen_only_while_applied() -> None:
    with gcpolicy.applied() as recovered:
        recovered()
        assert _ours()
    assert not _ours()


def test_a_failed_start_resumes_the_collector() -> None:
    with pytest.raises(RuntimeError), gcpolicy.applied():
        raise RuntimeError("the store could not be opened")
    assert gc.isenabled()


def _ours() -> list[object]:
    return [cb for cb in gc.callbacks if getattr(cb, "__module__", "") == gcpolicy.__name__]
