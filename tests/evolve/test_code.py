"""Normalised hashes, model-answer parsing and diffs."""

from __future__ import annotations

import pytest

from garagelab.evolve.code import CodeError, apply_diff, extract_function, normalized_hash, replace_function

PROGRAM = 'import numpy as np\n\n\ndef f(x):\n    """Doc."""\n    y = 2 * x\n    return y + 1\n'


def test_same_program_in_other_clothes_has_the_same_hash() -> None:
    renamed = "import numpy as np\ndef f(z):\n    # a comment\n    w = 2 * z\n    return w + 1\n"
    assert normalized_hash(PROGRAM) == normalized_hash(renamed)


def test_different_behaviour_has_a_different_hash() -> None:
    assert normalized_hash(PROGRAM) != normalized_hash(PROGRAM.replace("y + 1", "y + 2"))
    assert normalized_hash(PROGRAM) != normalized_hash(PROGRAM.replace("np", "math"))


def test_function_from_a_rambling_fenced_answer() -> None:
    answer = "Sure! Here is a better one:\n```python\ndef f_v2(x):\n    return 3 * x\n```\nIt is faster because"
    assert extract_function(answer, "f", accept=("f_v2",)) == "def f(x):\n    return 3 * x"


def test_the_version_asked_for_wins_over_copies_of_the_parents() -> None:
    answer = "```python\ndef f_v0(x):\n    return x\n\ndef f_v1(x):\n    return 2 * x\n```"
    assert "2 * x" in extract_function(answer, "f", accept=("f_v1", "f", "f_v0"))


def test_function_from_unfenced_text_with_trailing_prose() -> None:
    answer = "def f(x):\n    return x * x\nThis squares x."
    assert "return x * x" in extract_function(answer, "f")


def test_no_function_is_a_clear_error() -> None:
    with pytest.raises(CodeError, match="no parsable function f"):
        extract_function("I cannot help with that.", "f")


def test_replace_function_keeps_the_rest() -> None:
    out = replace_function(PROGRAM, "def g(x):\n    return -x", "f")
    assert "import numpy as np" in out and "return -x" in out and "def f(x)" in out


def test_search_replace_diff() -> None:
    diff = "<<<<<<< SEARCH\n    return y + 1\n=======\n    return y - 1\n>>>>>>> REPLACE"
    assert "return y - 1" in apply_diff(PROGRAM, diff)


def test_a_diff_that_does_not_match_is_refused() -> None:
    diff = "<<<<<<< SEARCH\n    return q\n=======\n    return y\n>>>>>>> REPLACE"
    with pytest.raises(CodeError, match="matches 0 times"):
        apply_diff(PROGRAM, diff)


def test_a_cut_answer_keeps_only_functions_known_to_have_ended() -> None:
    ended = "def f_v2(x):\n    return 2 * x\n\n\ndef f_v3(x):\n    y = x *"  # cut inside the next one
    assert "2 * x" in extract_function(ended, "f", accept=("f_v2",), complete_only=True)
    cut = "def f_v2(x):\n    y = 2 * x\n    return y +"  # the body lost its last line
    assert "y = 2 * x" in extract_function(cut, "f", accept=("f_v2",))  # salvaged when not cut...
    with pytest.raises(CodeError):
        extract_function(cut, "f", accept=("f_v2",), complete_only=True)  # ...refused when it was
