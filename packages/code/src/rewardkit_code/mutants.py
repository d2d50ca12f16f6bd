"""Small semantic mutations of a Python program: wrong variants of a correct solution.

Each kind changes one node (the first where it fits, or the second for the `*2` kinds):

- `const` / `const2`: an int constant + 1;
- `compare` / `compare2`: a comparison flipped (< ↔ >=, > ↔ <=, == ↔ !=);
- `arith` / `arith2`: an arithmetic operator swapped (+ ↔ −, * -> +);
- `boolop`: `and` ↔ `or`;
- `negate`: a returned value negated (`return not ...`);
- `first_arg`: the function under test returns its first argument.

A mutant is not necessarily wrong (a flipped branch may be dead code): run it against the
tests to know (rewardkit_rm's code pairs keep only those that fail). Used by the sandbox
throughput bench and by the reward-model preference data.
"""

from __future__ import annotations

import ast
import copy

KINDS = ("const", "const2", "compare", "compare2", "arith", "arith2", "boolop", "negate")


class Mutate(ast.NodeTransformer):
    """Applies one kind of mutation to the first (or, for `*2` kinds, second) node where
    it fits; `done` says whether it did."""

    SWAP = {
        ast.Lt: ast.GtE,
        ast.GtE: ast.Lt,
        ast.Gt: ast.LtE,
        ast.LtE: ast.Gt,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
        ast.Add: ast.Sub,
        ast.Sub: ast.Add,
        ast.Mult: ast.Add,
    }

    def __init__(self, kind: str):
        self.kind, self.done, self.seen = kind, False, 0
        self.base = kind.rstrip("2")
        self.target = 2 if kind.endswith("2") else 1

    def _hit(self) -> bool:
        """Count a place where the mutation fits; True at the one to mutate."""
        if self.done:
            return False
        self.seen += 1
        self.done = self.seen == self.target
        return self.done

    def visit_Constant(self, node):
        if self.base == "const" and type(node.value) is int and self._hit():
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if self.base == "compare" and type(node.ops[0]) in self.SWAP and self._hit():
            node.ops[0] = self.SWAP[type(node.ops[0])]()
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if self.base == "arith" and type(node.op) in self.SWAP and self._hit():
            node.op = self.SWAP[type(node.op)]()
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if self.base == "boolop" and self._hit():
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_Return(self, node):
        self.generic_visit(node)
        if self.base == "negate" and node.value is not None and self._hit():
            node.value = ast.UnaryOp(ast.Not(), node.value)
        return node


def mutate(program: str, kind: str) -> str | None:
    """`program` with one mutation of `kind` (unparsed with ast), or None where it does
    not fit."""
    if kind not in KINDS:
        raise ValueError(f"mutation kind must be one of {KINDS}, got {kind!r}")
    tree = Mutate(kind)
    mutated = tree.visit(copy.deepcopy(ast.parse(program)))
    if not tree.done:
        return None
    return ast.unparse(ast.fix_missing_locations(mutated)) + "\n"


def return_first_arg(program: str, entry_point: str) -> str | None:
    """`program` whose function `entry_point` returns its first argument (None when the
    function has no argument or is not there)."""
    tree = ast.parse(program)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point and node.args.args:
            doc = ast.get_docstring(node, clean=False)
            body = [node.body[0]] if doc is not None else []
            node.body = [*body, ast.Return(ast.Name(node.args.args[0].arg, ast.Load()))]
            return ast.unparse(ast.fix_missing_locations(tree)) + "\n"
    return None


def mutants(program: str, entry_point: str) -> list[tuple[str, str]]:
    """(kind, program) of every distinct mutant of `program` (all KINDS, then
    first_arg); none equals the program itself after unparsing."""
    same = ast.unparse(ast.parse(program)) + "\n"
    seen, out = {same}, []
    candidates = [(k, mutate(program, k)) for k in KINDS]
    candidates.append(("first_arg", return_first_arg(program, entry_point)))
    for kind, text in candidates:
        if text is not None and text not in seen:
            seen.add(text)
            out.append((kind, text))
    return out
