import pytest

from incidents.lifecycle import CLOSED, OPEN, RESOLVED, IllegalTransition, transition


@pytest.mark.parametrize("status,action,after", [
    (OPEN, "acknowledge", OPEN), (OPEN, "resolve", RESOLVED), (RESOLVED, "close", CLOSED),
    (RESOLVED, "reopen", OPEN), (CLOSED, "reopen", OPEN),
])
def test_legal_transitions(status, action, after):
    assert transition("INC-7", status, action).after == after


@pytest.mark.parametrize("status,action,says", [
    (OPEN, "close", "INC-7 is still open: resolve it first"),
    (CLOSED, "close", "INC-7 is already closed"),
    (RESOLVED, "resolve", "INC-7 is already resolved"),
    (CLOSED, "acknowledge", "INC-7 is closed"),
    (OPEN, "reopen", "INC-7 is already open"),
])
def test_illegal_transitions_say_why(status, action, says):
    with pytest.raises(IllegalTransition, match=says):
        transition("INC-7", status, action)
