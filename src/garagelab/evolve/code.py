"""Code manipulation: find the evolved function, normalise it, apply model edits.

The normalised form ignores what does not change behaviour: docstrings, formatting, comments,
and the names of arguments and local variables; two programs with the same normalised hash
are the same program and are evaluated once.
"""

from __future__ import annotations

import ast
import hashlib
import re

from garagelab.core.errors import UserError

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_DIFF = re.compile(r"<{5,} SEARCH\s*\n(.*?)\n={5,}\s*\n(.*?)\n>{5,} REPLACE", re.DOTALL)


class CodeError(UserError):
    """A program that does not parse, or lacks the function it must define."""


def parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise CodeError(f"syntax error at line {exc.lineno}: {exc.msg}") from None


def find_function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise CodeError(f"no top-level function named {name!r}")


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        scope = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
        if scope and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]


def _is_docstring(statement: ast.stmt) -> bool:
    value = statement.value if isinstance(statement, ast.Expr) else None
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


class _Renamer(ast.NodeTransformer):
    """Renames arguments and local variables of functions to v0, v1, ... in order of use."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            arg.arg = self.names.setdefault(arg.arg, f"v{len(self.names)}")
            arg.annotation = None
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if isinstance(node.ctx, ast.Store) or node.id in self.names:
            node.id = self.names.setdefault(node.id, f"v{len(self.names)}")
        return node


def normalized_hash(source: str) -> str:
    """A hash that is equal for programs that differ only in formatting, docstrings, comments,
    annotations or local names."""
    tree = parse(source)
    _strip_docstrings(tree)
    tree = _Renamer().visit(tree)
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()[:32]


def program_size(source: str) -> int:
    """Number of AST nodes: the size a parsimony penalty counts."""
    return sum(1 for _ in ast.walk(parse(source)))


def replace_function(program: str, function: ast.FunctionDef | str, name: str) -> str:
    """`program` with its top-level function `name` replaced by `function` (renamed to `name`)."""
    tree = parse(program)
    new = parse(function).body[0] if isinstance(function, str) else function
    if not isinstance(new, ast.FunctionDef):
        raise CodeError("the replacement is not a function definition")
    new.name = name
    for index, node in enumerate(tree.body):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            tree.body[index] = new
            return ast.unparse(tree)
    raise CodeError(f"no top-level function named {name!r} to replace")


def extract_function(text: str, name: str, accept: tuple[str, ...] = (), complete_only: bool = False) -> str:
    """The source of a function in a model's answer, renamed to `name`: the first of `accept`
    (in order of preference; `name` itself when empty) that the answer defines, looking in
    fenced code blocks first, then in the raw text from its first `def`. With `complete_only`
    (an answer cut at the token limit) a function counts only inside a closed code block or
    where something follows it at the left margin (the next definition, a closing fence, prose):
    one that runs to the cut may have lost its last lines, which dropping the lines that do not
    parse would otherwise accept silently."""
    preference = accept or (name,)
    blocks = [(block, True) for block in _FENCE.findall(text)]  # closed blocks: complete
    blocks.append((text[text.find("def ") :] if "def " in text else text, False))
    found: dict[str, ast.FunctionDef] = {}
    for block, closed in blocks:
        tree = _parse_prefix(block)
        lines = block.splitlines()
        for node in tree.body if tree is not None else ():
            if not isinstance(node, ast.FunctionDef) or node.name not in preference:
                continue
            if complete_only and not closed and not _ends_before(lines, node.end_lineno or len(lines)):
                continue
            found.setdefault(node.name, node)
    for wanted in preference:
        if wanted in found:
            found[wanted].name = name
            return ast.unparse(found[wanted])
    raise CodeError(f"the answer contains no parsable function {' or '.join(preference[:3])}")


def _ends_before(lines: list[str], end: int) -> bool:
    """Whether a line at the left margin follows line `end`: the definition ended there."""
    return any(line.strip() and not line[0].isspace() for line in lines[end:])


def _parse_prefix(block: str) -> ast.Module | None:
    """Parse `block`, dropping trailing lines until it parses (models ramble after code)."""
    lines = block.rstrip().splitlines()
    while lines:
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError:
            lines.pop()
    return None


def apply_diff(source: str, text: str) -> str:
    """Apply every SEARCH/REPLACE block in `text` to `source` (each SEARCH must match once)."""
    blocks = _DIFF.findall(text)
    if not blocks:
        raise CodeError("the answer contains no SEARCH/REPLACE block")
    for search, replace in blocks:
        count = source.count(search)
        if count != 1:
            raise CodeError(f"a SEARCH block matches {count} times; it must match exactly once")
        source = source.replace(search, replace)
    parse(source)
    return source
