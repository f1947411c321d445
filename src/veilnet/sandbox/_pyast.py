"""Static checks and fuel instrumentation of Python agent source, before Monty ever sees it.
Rejects I/O, reflection and dunder names; routes costly operations through ``_pymeter``."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

from veilnet.sandbox import _pymeter as m
from veilnet.sandbox import constants as c
from veilnet.sandbox.errors import SandboxCompileError, SandboxForbidden

ENTRY_NAMES = ("init", "handle", "query", "job")


@dataclass(frozen=True, slots=True)
class CheckedSource:
    """Instrumented agent source plus what the driver needs to know about it."""

    source: str
    entries: frozenset[str]
    imports_random: bool
    wrappers: str
    """Monty source of the metering wrappers this agent uses (see ``_pymeter.wrappers``)."""
    operators: frozenset[str]
    """The operator and comparison wrappers its source calls (see ``_pymeter.base_prelude``)."""


def _is_dunder(name: str) -> bool:
    return name.startswith("__")


def _forbid(node: ast.AST, message: str, **details: object) -> SandboxForbidden:
    line = getattr(node, "lineno", 0)
    return SandboxForbidden(f"{message} (line {line})", line=line, **details)


class _Checker(ast.NodeVisitor):
    """Raises ``SandboxForbidden`` at the first construct the sandbox does not allow."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports_random = False
        self._class_depth = 0
        self._finally_depth = 0
        walked = list(ast.walk(tree))
        self.modules = frozenset(
            alias.asname or alias.name.split(".")[0]
            for node in walked
            if isinstance(node, ast.Import)
            for alias in node.names
        )
        self._bases = {id(n.value) for n in walked if isinstance(n, ast.Attribute)}
        self._called = {id(n.func) for n in walked if isinstance(n, ast.Call)}

    def _bind(self, node: ast.AST, name: str) -> None:
        """``name`` is (re)bound here: built-ins the meter wraps and modules may not be."""
        self._name(node, name)
        if name in m.METERED_BUILTINS or name in self.modules:
            raise _forbid(node, f"{name!r} may not be rebound in the sandbox", name=name)

    def _name(self, node: ast.AST, name: str) -> None:
        if name.startswith(c.RESERVED_PREFIX):
            raise _forbid(node, f"name {name!r} is reserved by the sandbox", name=name)
        if _is_dunder(name):
            raise _forbid(node, f"dunder name {name!r} is not allowed", name=name)
        if name in c.PY_FORBIDDEN_NAMES:
            raise _forbid(node, f"{name!r} is not available in the sandbox", name=name)

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self._bind(node, node.id)
            return
        self._name(node, node.id)
        if node.id in self.modules and id(node) not in self._bases:
            message = f"module {node.id!r} may only be used as {node.id}.name"
            raise _forbid(node, message, name=node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _is_dunder(node.attr) or node.attr.startswith(c.RESERVED_PREFIX):
            raise _forbid(node, f"attribute {node.attr!r} is not allowed", name=node.attr)
        base = node.value
        if (
            isinstance(base, ast.Name)
            and base.id in self.modules
            and id(node) not in self._called
            and node.attr not in m.MODULE_CONSTANTS
        ):
            message = f"{base.id}.{node.attr} may only be called, not used as a value"
            raise _forbid(node, message, name=node.attr)
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Slice):
            raise _forbid(node, "slice assignment is not supported; build a new list")
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self._bind(node, node.arg)
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
            if node.module != "typing" and alias.name not in m.MODULE_CONSTANTS:
                raise _forbid(
                    node,
                    f"import {node.module} and call {node.module}.{alias.name}(...) instead",
                    name=alias.name,
                )
            self._bind(node, alias.asname or alias.name)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node, node.name)
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
            self._bind(node, node.name)
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
            self._bind(node, node.name)
        if node.type is not None:
            self.visit(node.type)
        for stmt in node.body:
            self.visit(stmt)


_COMPREHENSIONS: Final = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

_BINOPS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.FloorDiv: "floordiv",
    ast.Mod: "mod", ast.Pow: "pow", ast.LShift: "lshift", ast.RShift: "rshift",
    ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor",
}  # fmt: skip
_UNARY: Final[dict[type[ast.unaryop], str]] = {ast.USub: "neg", ast.UAdd: "pos", ast.Invert: "inv"}
_COMPARE: Final[dict[type[ast.cmpop], str]] = {
    ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge",
    ast.In: "in", ast.NotIn: "notin",
}  # fmt: skip
_UNMETERED_METHODS: Final = frozenset(
    {"append", "add", "discard", "get", "keys", "values", "items", "setdefault"}
)
"""Methods of O(1) cost whatever their receiver (hashes of strings are cached)."""


def _name(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_name(name), args=list(args), keywords=[])


def _assign(name: str, value: ast.expr) -> ast.stmt:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value)


def _tick(n: int) -> ast.stmt:
    return ast.Expr(_call("_veil_tick", ast.Constant(n)))


def _is_scalar_constant(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and not isinstance(node.value, tuple)


def _weight(nodes: list[ast.AST] | list[ast.stmt] | list[ast.expr]) -> int:
    """Static cost of running ``nodes`` once: one per node, more for each wrapper call; loops,
    functions and comprehensions inside charge for themselves."""
    total = 0
    todo: list[ast.AST] = list(nodes)
    while todo:
        node = todo.pop()
        total += 1 + (m.WRAPPER_WEIGHT if isinstance(node, ast.Call) else 0)
        if isinstance(node, ast.For):
            todo.extend([node.target, node.iter, *node.orelse])
        elif isinstance(node, ast.While):
            todo.extend(node.orelse)
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, _COMPREHENSIONS):
            todo.append(node.generators[0].iter)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return total


class _Rewriter(ast.NodeTransformer):
    """Routes every operation whose cost depends on its operands through a metering wrapper of
    ``_pymeter`` (run after ``_Checker`` accepted the tree)."""

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules
        self.builtins: set[str] = set()
        self.methods: set[str] = set()
        self.attributes: set[str] = set()
        self._temps = 0

    def _temp(self) -> str:
        self._temps += 1
        return f"_veil_t{self._temps}"

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        op = _BINOPS.get(type(node.op))
        if op is None or any(
            isinstance(side, ast.Constant) and isinstance(side.value, float)
            for side in (node.left, node.right)
        ):
            return node
        return _call(f"_veil_o_{op}", node.left, node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        op = _UNARY.get(type(node.op))
        if op is None or _is_scalar_constant(node.operand):
            return node
        return _call(f"_veil_u_{op}", node.operand)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        operands = [node.left, *node.comparators]
        parts: list[ast.expr] = []
        for i, op in enumerate(node.ops):
            left, right = operands[i], operands[i + 1]
            if i + 1 < len(node.ops):
                # the middle operand is evaluated once, as Python does
                temp = self._temp()
                right = ast.NamedExpr(target=ast.Name(id=temp, ctx=ast.Store()), value=right)
                operands[i + 1] = _name(temp)
            name = _COMPARE.get(type(op))
            cheap = (
                _is_scalar_constant(operands[i + 1])
                if name in ("in", "notin")
                else _is_scalar_constant(left) or _is_scalar_constant(operands[i + 1])
            )
            if name is None or cheap:
                parts.append(ast.Compare(left=left, ops=[op], comparators=[right]))
            else:
                parts.append(_call(f"_veil_c_{name}", left, right))
        return parts[0] if len(parts) == 1 else ast.BoolOp(op=ast.And(), values=parts)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Attribute):
            func.value = self.visit(func.value)
        elif not isinstance(func, ast.Name):
            node.func = self.visit(func)
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        for keyword in node.keywords:
            if keyword.arg is None:
                keyword.value = _call("_veil_sized", keyword.value)
        if isinstance(func, ast.Name):
            if func.id == "range":
                node.func = _name("_veil_range")
            elif func.id in m.METERED_BUILTINS:
                self.builtins.add(func.id)
                node.func = _name(f"_veil_b_{func.id}")
            return node
        if isinstance(func, ast.Attribute) and func.attr not in _UNMETERED_METHODS:
            value = func.value
            if (
                isinstance(value, ast.Name)
                and value.id in self.modules
                and func.attr in m.MODULE_CONSTANTS
            ):
                return node
            self.methods.add(func.attr)
            return ast.Call(
                func=_name(f"_veil_m_{func.attr}"),
                args=[func.value, *node.args],
                keywords=node.keywords,
            )
        return node

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if (
            isinstance(node.ctx, ast.Load)
            and node.id in m.METERED_BUILTINS
            and node.id not in m.TYPE_NAMES
        ):
            self.builtins.add(node.id)
            return _name(f"_veil_b_{node.id}")
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if not isinstance(node.ctx, ast.Load) or node.attr not in m.METHOD_NAMES:
            return node
        if isinstance(node.value, ast.Name) and node.value.id in self.modules:
            return node
        self.attributes.add(node.attr)
        return _call(f"_veil_a_{node.attr}", node.value)

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load) and isinstance(node.slice, ast.Slice):
            none = ast.Constant(None)
            bounds = node.slice
            return _call(
                "_veil_slice",
                node.value,
                bounds.lower or none,
                bounds.upper or none,
                bounds.step or none,
            )
        return node

    def visit_Starred(self, node: ast.Starred) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.value = _call("_veil_sized", node.value)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        self.generic_visit(node)
        node.values = [
            _call("_veil_sized", v) if k is None else v
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                value.value = self.visit(value.value)
        return _call("_veil_sized", node)

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        self.generic_visit(node)
        if any(isinstance(n, ast.Starred) for t in node.targets for n in ast.walk(t)):
            node.value = _call("_veil_sized", node.value)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt | list[ast.stmt]:
        self.generic_visit(node)
        op = _BINOPS.get(type(node.op))
        if op is None:
            return node
        target = node.target
        prefix: list[ast.stmt] = []
        load: ast.expr
        store: ast.expr
        if isinstance(target, ast.Name):
            load, store = _name(target.id), ast.Name(id=target.id, ctx=ast.Store())
        elif isinstance(target, ast.Attribute):
            base = self._temp()
            prefix.append(_assign(base, target.value))
            load = ast.Attribute(value=_name(base), attr=target.attr, ctx=ast.Load())
            if target.attr in m.METHOD_NAMES:
                self.attributes.add(target.attr)
                load = _call(f"_veil_a_{target.attr}", _name(base))
            store = ast.Attribute(value=_name(base), attr=target.attr, ctx=ast.Store())
        else:
            assert isinstance(target, ast.Subscript)
            base, key = self._temp(), self._temp()
            prefix.append(_assign(base, target.value))
            prefix.append(_assign(key, target.slice))
            load = ast.Subscript(value=_name(base), slice=_name(key), ctx=ast.Load())
            store = ast.Subscript(value=_name(base), slice=_name(key), ctx=ast.Store())
        update = ast.Assign(targets=[store], value=_call(f"_veil_i_{op}", load, node.value))
        return [*prefix, update]


class _Ticker(ast.NodeTransformer):
    """Charges each loop iteration, function call, lambda and comprehension step the static
    weight of what it runs, plus exception guards (after ``_Rewriter``)."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.body = [_tick(_weight(node.body) + m.WRAPPER_WEIGHT), *node.body]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        self.generic_visit(node)
        weight = _weight([node.body]) + m.WRAPPER_WEIGHT
        tick = _call("_veil_tick", ast.Constant(weight))
        node.body = ast.BoolOp(op=ast.And(), values=[tick, node.body])
        return node

    def visit_For(self, node: ast.For) -> ast.For:
        self.generic_visit(node)
        node.body = [_tick(_weight([*node.body, node.target]) + m.WRAPPER_WEIGHT), *node.body]
        return node

    def visit_While(self, node: ast.While) -> ast.While:
        self.generic_visit(node)
        node.body = [_tick(_weight([*node.body, node.test]) + m.WRAPPER_WEIGHT), *node.body]
        return node

    def _comprehension(self, node: ast.expr, elements: list[ast.expr]) -> ast.expr:
        self.generic_visit(node)
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        for i, gen in enumerate(generators):
            per_step: list[ast.expr] = [gen.target, *gen.ifs]
            if i + 1 < len(generators):
                per_step.append(generators[i + 1].iter)
            else:
                per_step.extend(elements)
            weight = _weight(per_step) + m.WRAPPER_WEIGHT
            gen.ifs = [_call("_veil_tick", ast.Constant(weight)), *gen.ifs]
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return self._comprehension(node, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> ast.expr:
        return self._comprehension(node, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.expr:
        return self._comprehension(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> ast.expr:
        return self._comprehension(node, [node.key, node.value])

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if not node.name:
            node.name = "_veil_e"
        node.body = [ast.Expr(_call("_veil_guard", _name(node.name))), *node.body]
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
    checker = _Checker(tree)
    checker.visit(tree)
    entries = frozenset(
        stmt.name
        for stmt in tree.body
        if isinstance(stmt, ast.FunctionDef) and stmt.name in ENTRY_NAMES
    )
    rewriter = _Rewriter(checker.modules)
    metered = ast.fix_missing_locations(_Ticker().visit(rewriter.visit(tree)))
    source = ast.unparse(metered)
    return CheckedSource(
        source=source,
        operators=frozenset(m.OPERATOR_WRAPPER.findall(source)),
        entries=entries,
        imports_random=checker.imports_random,
        wrappers=m.wrappers(
            frozenset(rewriter.builtins),
            frozenset(rewriter.methods),
            frozenset(rewriter.attributes),
        ),
    )
