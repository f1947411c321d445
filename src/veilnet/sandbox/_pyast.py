"""Static checks and fuel instrumentation of Python agent source, before Monty ever sees it.
Rejects I/O, reflection and dunder names; inserts ticks in loops, calls and comprehensions."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from veilnet.sandbox import constants as c
from veilnet.sandbox.errors import SandboxCompileError, SandboxForbidden

ENTRY_NAMES = ("init", "handle", "query", "job")


@dataclass(frozen=True, slots=True)
class CheckedSource:
    """Instrumented agent source plus what the driver needs to know about it."""

    source: str
    entries: frozenset[str]
    imports_random: bool


def _is_dunder(name: str) -> bool:
    return name.startswith("__")


def _forbid(node: ast.AST, message: str, **details: object) -> SandboxForbidden:
    line = getattr(node, "lineno", 0)
    return SandboxForbidden(f"{message} (line {line})", line=line, **details)


class _Checker(ast.NodeVisitor):
    """Raises ``SandboxForbidden`` at the first construct the sandbox does not allow."""

    def __init__(self) -> None:
        self.imports_random = False
        self._class_depth = 0
        self._finally_depth = 0

    def _name(self, node: ast.AST, name: str) -> None:
        if name.startswith(c.RESERVED_PREFIX):
            raise _forbid(node, f"name {name!r} is reserved by the sandbox", name=name)
        if _is_dunder(name):
            raise _forbid(node, f"dunder name {name!r} is not allowed", name=name)
        if name in c.PY_FORBIDDEN_NAMES:
            raise _forbid(node, f"{name!r} is not available in the sandbox", name=name)

    def visit_Name(self, node: ast.Name) -> None:
        self._name(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_dunder(node.attr) or node.attr.startswith(c.RESERVED_PREFIX):
            raise _forbid(node, f"attribute {node.attr!r} is not allowed", name=node.attr)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._name(node, node.arg)
        self.generic_visit(node)

    def _check_import(self, node: ast.AST, module: str) -> None:
        root = module.split(".")[0]
        if root not in c.PY_ALLOWED_IMPORTS:
            raise _forbid(node, f"import of {module!r} is not allowed", module=module)
        if root == "random":
            self.imports_random = True

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_import(node, alias.name)
            if alias.asname:
                self._name(node, alias.asname)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            raise _forbid(node, "relative imports are not allowed")
        self._check_import(node, node.module)
        for alias in node.names:
            self._name(node, alias.asname or alias.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._name(node, node.name)
        if node.bases or node.keywords or node.decorator_list:
            raise SandboxCompileError(
                f"classes may not have bases, keywords or decorators (line {node.lineno})"
            )
        self._class_depth += 1
        for stmt in node.body:
            self._visit_def_in_class(stmt)
        self._class_depth -= 1

    def _visit_def_in_class(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.FunctionDef) and stmt.name in c.PY_ALLOWED_DUNDER_DEFS:
            self._function(stmt, check_name=False)
        else:
            self.visit(stmt)

    def _function(self, node: ast.FunctionDef, *, check_name: bool = True) -> None:
        if check_name:
            self._name(node, node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        saved, self._finally_depth = self._finally_depth, 0
        for stmt in node.body:
            self.visit(stmt)
        self._finally_depth = saved

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        raise SandboxCompileError(f"async functions are not supported (line {node.lineno})")

    def visit_Await(self, node: ast.Await) -> None:
        raise SandboxCompileError(f"await is not supported (line {node.lineno})")

    def visit_Yield(self, node: ast.Yield) -> None:
        raise SandboxCompileError(f"generators are not supported (line {node.lineno})")

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        raise SandboxCompileError(f"generators are not supported (line {node.lineno})")

    def visit_TryStar(self, node: ast.TryStar) -> None:
        raise SandboxCompileError(f"except* is not supported (line {node.lineno})")

    def visit_Try(self, node: ast.Try) -> None:
        for stmt in node.body + node.orelse:
            self.visit(stmt)
        for handler in node.handlers:
            self.visit(handler)
        self._finally_depth += 1
        for stmt in node.finalbody:
            self.visit(stmt)
        self._finally_depth -= 1

    def _no_jump_in_finally(self, node: ast.stmt) -> None:
        if self._finally_depth:
            raise _forbid(node, "return/break/continue inside finally is not allowed")

    def visit_Return(self, node: ast.Return) -> None:
        self._no_jump_in_finally(node)
        self.generic_visit(node)

    def visit_Break(self, node: ast.Break) -> None:
        self._no_jump_in_finally(node)

    def visit_Continue(self, node: ast.Continue) -> None:
        self._no_jump_in_finally(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._name(node, node.name)
        if node.type is not None:
            self.visit(node.type)
        for stmt in node.body:
            self.visit(stmt)


def _tick(n: int = 1) -> ast.stmt:
    return ast.Expr(_tick_call(n))


def _tick_call(n: int = 1) -> ast.expr:
    return ast.Call(
        func=ast.Name(id="_veil_tick", ctx=ast.Load()), args=[ast.Constant(n)], keywords=[]
    )


class _Meter(ast.NodeTransformer):
    """Inserts fuel ticks and exception guards (run after ``_Checker`` accepted the tree)."""

    def _prepend(self, body: list[ast.stmt], *stmts: ast.stmt) -> list[ast.stmt]:
        return [*stmts, *body]

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.body = self._prepend(node.body, _tick())
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        self.generic_visit(node)
        node.body = ast.BoolOp(op=ast.And(), values=[_tick_call(), node.body])
        return node

    def visit_For(self, node: ast.For) -> ast.For:
        self.generic_visit(node)
        node.body = self._prepend(node.body, _tick())
        return node

    def visit_While(self, node: ast.While) -> ast.While:
        self.generic_visit(node)
        node.body = self._prepend(node.body, _tick())
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.ifs = [_tick_call(), *node.ifs]
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if not node.name:
            node.name = "_veil_e"
        guard = ast.Expr(
            ast.Call(
                func=ast.Name(id="_veil_guard", ctx=ast.Load()),
                args=[ast.Name(id=node.name, ctx=ast.Load())],
                keywords=[],
            )
        )
        node.body = self._prepend(node.body, guard)
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "range":
            node.func = ast.Name(id="_veil_range", ctx=ast.Load())
        return node


def check_and_instrument(code: str) -> CheckedSource:
    """Parse, check and meter a Python agent.

    Raises:
        SandboxCompileError: not valid Python, or uses a construct Monty cannot run.
        SandboxForbidden: imports, names or attributes the sandbox does not allow.
    """
    try:
        tree = ast.parse(code, filename="agent.py", mode="exec")
    except (SyntaxError, ValueError) as exc:
        raise SandboxCompileError(
            f"agent does not parse: {exc.msg if isinstance(exc, SyntaxError) else exc}"
        ) from exc
    checker = _Checker()
    checker.visit(tree)
    entries = frozenset(
        stmt.name
        for stmt in tree.body
        if isinstance(stmt, ast.FunctionDef) and stmt.name in ENTRY_NAMES
    )
    metered = ast.fix_missing_locations(_Meter().visit(tree))
    return CheckedSource(
        source=ast.unparse(metered), entries=entries, imports_random=checker.imports_random
    )
