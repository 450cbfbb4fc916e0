"""The example policies, each in turn, for the simulator's tests."""

from __future__ import annotations

import pytest
from roles_month import EXAMPLES, POLICIES

from shiftd.simulate import Policy
from shiftd.simulate.inputs import load_policy


@pytest.fixture(params=POLICIES, ids=lambda name: name.removesuffix(".yaml"))
def policy(request: pytest.FixtureRequest) -> Policy:
    """Each example policy in turn."""
    return load_policy(EXAMPLES / request.param)
