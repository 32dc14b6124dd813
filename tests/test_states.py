"""Which states a question names."""

from __future__ import annotations

import pytest

from assistant.plans import state_from_filename
from assistant.states import asks_across_states, detect_states, normalize_state


@pytest.mark.parametrize("question, states", [
    ("How does Delaware support students moving from middle to high school?", ["DE"]),
    ("What does the state of Nevada do for English learners?", ["NV"]),
    ("How do Delaware and Massachusetts handle chronic absenteeism?", ["DE", "MA"]),
    ("Compare NV and DE on school climate", ["NV", "DE"]),
    ("Compare MA and DE on teacher equity and school climate", ["MA", "DE"]),
    ("What is West Virginia's n-size?", ["WV"]),
    ("Does Virginia fund computer science?", ["VA"]),
    ("What's in the MA plan about early literacy?", ["MA"]),
    ("How are schools in the plans identified for support?", []),
    ("Is there money IN the budget OR not?", []),  # capitals that are words, not states
    ("What does Texas say about dual enrollment?", ["TX"]),
    ("What does New York's plan say about arts?", ["NY"]),
])
def test_detect_states(question, states):
    assert detect_states(question) == states


def test_normalize_state():
    assert normalize_state("de") == "DE"
    assert normalize_state("Massachusetts") == "MA"
    assert normalize_state("Atlantis") is None


@pytest.mark.parametrize("name, state", [
    ("DE.pdf", "DE"), ("delaware-2019-amended.pdf", "DE"), ("new_york_plan.docx", "NY"),
    ("West-Virginia.pdf", "WV"), ("plan-final.pdf", None),
])
def test_state_from_filename(name, state):
    assert state_from_filename(name) == state


def test_across_states_questions():
    assert asks_across_states("Which states offer dual enrollment?")
    assert not asks_across_states("How does Delaware offer dual enrollment?")
