"""rewardkit_code.mutants: one small semantic change per kind, at the first or second fit."""

import pytest

from rewardkit_code.mutants import KINDS, mutants, mutate, return_first_arg

PROGRAM = """def f(x, y):
    if x < 3 and y > 0:
        return x + 2 * y
    return x - 1
"""


@pytest.mark.parametrize(
    "kind, changed",
    [
        ("const", "if x < 4 and y > 0"),
        ("const2", "if x < 3 and y > 1"),
        ("compare", "if x >= 3 and y > 0"),
        ("compare2", "if x < 3 and y <= 0"),
        ("arith", "return x + (2 + y)"),  # post-order: the inner 2 * y is the first BinOp
        ("arith2", "return x - 2 * y"),
        ("boolop", "if x < 3 or y > 0"),
        ("negate", "return not x + 2 * y"),
    ],
)
def test_each_kind_changes_one_node(kind, changed):
    assert changed in mutate(PROGRAM, kind)


def test_mutants_are_distinct_and_none_is_the_program():
    found = mutants(PROGRAM, "f")
    texts = [t for _, t in found]
    assert len(set(texts)) == len(texts) == len(KINDS) + 1
    assert all("return x\n" in t for k, t in found if k == "first_arg")
    assert mutate("def g():\n    return 'a'\n", "arith") is None
    assert return_first_arg("def g():\n    return 1\n", "g") is None
    with pytest.raises(ValueError, match="mutation kind"):
        mutate(PROGRAM, "delete")
