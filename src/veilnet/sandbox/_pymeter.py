"""The cost model of Python agents: trusted Monty code that charges fuel for what an operation
really costs (big integers, copies, searches, sorts, JSON) before or right after it runs.

Monty has no instruction counter, so ``_pyast`` routes every operator, comparison, method call,
metered built-in and slice of an agent through the wrappers generated here. A wrapper charges a
cost it can compute in O(1) (sizes, machine words) *before* any operation whose cost can exceed
its result's size (multiplication, powers, shifts, division, repetition, searches, sorting) and
charges the size of the result *after* the rest (a single one is bounded by the memory limit, so
a loop of them runs out of fuel). Comparisons of containers walk them first, metered, because
aliasing (``[[x] * 1000] * 1000``) makes a structure far larger than what built it.

One tick is about 50 ns of Monty work on the reference machine; the weights below were measured
with ``veil bench sandbox`` (the ``py_metering`` rows) so that no operation gets more than about
one tick of work per tick charged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
from typing import Final

CHARS_PER_TICK: Final = 8
"""Characters or bytes a string/bytes operation may touch per tick (slicing is ~6 ns a char)."""

REPEAT_CHARS_PER_TICK: Final = 256
"""Characters or bytes of a repetition (``'x' * n``) per tick: a fill runs at ~0.1 ns a byte."""

WORDS_PER_TICK: Final = 4
"""64-bit words of a big integer a linear operation (add, shift, ``hex``) may touch per tick."""

JSON_CHARS_PER_TICK: Final = 2
"""Characters of JSON text per tick (``json.dumps``/``loads`` run at ~16 ns a character)."""

WRAPPER_WEIGHT: Final = 4
"""Static weight of one wrapped node: the call into the wrapper itself costs about 200 ns."""

TYPE_NAMES: Final = frozenset(
    {"str", "int", "float", "bool", "list", "tuple", "dict", "set", "frozenset", "bytes"}
)
"""Built-in types: metered when called, left alone as values (``isinstance(x, str)``)."""

METERED_BUILTINS: Final = TYPE_NAMES | frozenset(
    {
        "sorted", "min", "max", "sum", "pow", "divmod", "repr", "format", "hex", "bin", "oct",
        "ascii", "any", "all", "enumerate", "zip", "map", "filter", "reversed", "abs", "round",
        "hash",
    }
)  # fmt: skip
"""Built-in functions every use of which goes through a ``_veil_b_*`` wrapper; agents may not
rebind these names."""

MODULE_CONSTANTS: Final = frozenset({"pi", "e", "tau", "inf", "nan"})
"""Module attributes an agent may read as values (everything else of a module must be called)."""

OPERATOR_WRAPPER: Final = re.compile(r"_veil_[oiuc]_[a-z]+")
"""Names of the operator, in-place and comparison wrappers (emitted by ``_pyast``)."""

_DATA_ATTRIBUTES: Final = frozenset({"real", "imag", "numerator", "denominator"})


def _method_names() -> frozenset[str]:
    names: set[str] = {"hexdigest", "digest"}
    for kind in (str, bytes, list, tuple, dict, set, frozenset, int, float, bool):
        names.update(dir(kind))
    for module in (json, math, hashlib, base64, random):
        names.update(dir(module))
    return frozenset(
        n
        for n in names
        if not n.startswith("_") and n not in _DATA_ATTRIBUTES and n not in MODULE_CONSTANTS
    )


METHOD_NAMES: Final = _method_names()
"""Names of methods of built-in values and allowed modules: an agent may only *call* these on
built-in values (a bound built-in method taken as a value would escape the meter)."""

_SPECIAL_PRE: Final = {
    "sort": "_veil_sortcost(o)",
    "count": "_veil_searchcost(o, a)",
    "index": "_veil_searchcost(o, a)",
    "remove": "_veil_searchcost(o, a)",
    "factorial": "_veil_mathcost(a)",
    "comb": "_veil_mathcost(a)",
    "perm": "_veil_mathcost(a)",
    "isqrt": "_veil_mathcost(a)",
    "gcd": "_veil_mathcost(a)",
    "lcm": "_veil_mathcost(a)",
    "prod": "_veil_seqcost(a[0]) if a else 0",
    "getrandbits": "(a[0] // 64 // _veil_WPT) if a and type(a[0]) is int else 0",
    "loads": "(len(a[0]) // _veil_JPT) if a and type(a[0]) in _veil_STR else 0",
}
"""Method names whose cost is more than the sizes of receiver, arguments and result."""

_POST_JSON: Final = frozenset({"dumps", "loads"})

BASE_PRELUDE: Final = """
import math as _veil_math
_veil_used = 0
_veil_limit = %(load_ticks)d
_veil_M = 1 << 62
_veil_CPT = %(cpt)d
_veil_WPT = %(wpt)d
_veil_JPT = %(jpt)d
_veil_RPT = %(rpt)d
_veil_STR = (str, bytes)
_veil_CON = (list, tuple, dict, set, frozenset)
_veil_BT = (str, bytes, list, tuple, dict, set, frozenset, int, float, bool)

def _veil_tick(n):
    global _veil_used
    _veil_used += n
    if _veil_used > _veil_limit:
        raise RuntimeError("veil:out_of_fuel")
    return True

def _veil_words(v):
    if -_veil_M < v < _veil_M:
        return 1
    return int(_veil_math.log2(v if v > 0 else -v)) // 64 + 1

def _veil_sz(v):
    t = type(v)
    if t is int:
        if -_veil_M < v < _veil_M:
            return 0
        return _veil_words(v) // _veil_WPT
    if t is str or t is bytes:
        return len(v) // _veil_CPT
    if t is list or t is tuple or t is dict or t is set or t is frozenset:
        return len(v)
    return 0

def _veil_sized(r):
    n = _veil_sz(r)
    if n:
        _veil_tick(n)
    return r

def _veil_kinds(xs):
    # The element types of a container; the scan costs ~160 ns an element, so it is charged.
    _veil_tick(3 * len(xs))
    return set(map(type, xs))

def _veil_deep(v):
    # Metered as it goes: an aliased giant runs out of fuel inside this walk.
    todo = [v]
    n = 0
    while todo:
        x = todo.pop()
        k = 8 + _veil_sz(x)
        _veil_tick(k)
        n += k
        t = type(x)
        if t is dict:
            todo.extend(x.keys())
            todo.extend(x.values())
        elif t in _veil_CON and _veil_kinds(x) & {list, tuple, dict, set, frozenset}:
            todo.extend(x)
    return n

def _veil_cmp(a, b):
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if -_veil_M < a < _veil_M or -_veil_M < b < _veil_M:
            return
        _veil_tick((_veil_words(a) + _veil_words(b)) // _veil_WPT)
        return
    if ta in _veil_CON or tb in _veil_CON:
        _veil_deep(a)
        _veil_deep(b)
        return
    n = _veil_sz(a) + _veil_sz(b)
    if n:
        _veil_tick(n)

def _veil_in(a, b):
    tb = type(b)
    if tb is list or tb is tuple:
        if type(a) in _veil_CON or _veil_kinds(b) & {list, tuple, dict, set, frozenset}:
            _veil_tick(len(b) * _veil_deep(a))
            _veil_deep(b)
        else:
            _veil_tick(len(b) + _veil_sz(a))
    else:
        _veil_cmp(a, b)

def _veil_mulcost(wa, wb):
    if wa > wb:
        wa, wb = wb, wa
    if wa < 32:
        return wa * wb // 16
    return wb * _veil_math.isqrt(wa) // 3

def _veil_divcost(wa, wb):
    if wa < wb:
        return wa // _veil_WPT
    return wb * (wa - wb + 1) // 128 + wa // _veil_WPT

def _veil_seqcost(xs):
    # Cost of reducing or comparing every element of a sequence: element sizes count.
    if type(xs) not in _veil_CON:
        return 0
    kinds = _veil_kinds(xs)
    if kinds & {list, tuple, dict, set, frozenset}:
        return _veil_deep(xs)
    n = len(xs)
    if int in kinds:
        # a Python call an element: charged what it costs
        _veil_tick(8 * len(xs))
        ints = xs if len(kinds) == 1 else [x for x in xs if type(x) is int]
        n += sum(map(_veil_words, ints)) // _veil_WPT
    if str in kinds or bytes in kinds:
        n += sum(map(len, [x for x in xs if type(x) in _veil_STR])) // _veil_CPT
    return n

def _veil_sortcost(xs):
    n = len(xs) if type(xs) in _veil_CON else 0
    if n < 2:
        return 0
    per = _veil_seqcost(xs) // n + 1
    return n * (len(bin(n)) - 2) * per

def _veil_searchcost(o, a):
    if type(o) is list or type(o) is tuple:
        if a and type(a[0]) in _veil_CON:
            return len(o) * _veil_deep(a[0])
        return len(o)
    return 0

def _veil_mathcost(a):
    n = 0
    for x in a:
        if type(x) is int and x > 0:
            w = _veil_words(x)
            if w > 1:
                n += _veil_mulcost(w, w) + _veil_divcost(2 * w, w)
            elif x > 512:
                # factorial, comb and perm of x: a result of about x*log2(x) bits
                r = x * (len(bin(x)) - 2) // 64 + 1
                n += _veil_mulcost(r, r)
    return n

def _veil_powcost(a, b, m):
    if type(a) is not int or type(b) is not int or b < 2:
        return 0
    if m is not None:
        if type(m) is not int:
            return 0
        wm = _veil_words(m)
        return (_veil_words(b) * 64) * (_veil_mulcost(wm, wm) + _veil_divcost(2 * wm, wm) + 1)
    if -2 <= a <= 2:
        return _veil_words(b)
    bits = (len(bin(a)) - 3 if -_veil_M < a < _veil_M else _veil_words(a) * 64) * b
    rw = bits // 64 + 1
    return _veil_mulcost(rw, rw) + rw

def _veil_repcost(s, n):
    # Repetition is a fill: far cheaper per byte than a slice (memory stops a bomb instead).
    t = type(s)
    if n <= 0:
        return 1
    if t is str or t is bytes:
        return n * len(s) // _veil_RPT + 1
    if t is list or t is tuple:
        return n * len(s) // 8 + 1
    return 1

def _veil_mulcharge(a, b):
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if not (-_veil_M < a < _veil_M and -_veil_M < b < _veil_M):
            _veil_tick(_veil_mulcost(_veil_words(a), _veil_words(b)))
    elif ta is float or tb is float:
        return
    elif ta is int:
        _veil_tick(_veil_repcost(b, a))
    elif tb is int:
        _veil_tick(_veil_repcost(a, b))

def _veil_o_mul(a, b):
    if type(a) is int and type(b) is int and -_veil_M < a < _veil_M and -_veil_M < b < _veil_M:
        return a * b
    _veil_mulcharge(a, b)
    return a * b

def _veil_o_pow(a, b):
    _veil_tick(_veil_powcost(a, b, None))
    return a ** b

def _veil_o_lshift(a, b):
    if type(b) is int and b > 64:
        _veil_tick((b // 64 + _veil_sz(a) * _veil_WPT) // _veil_WPT)
    return a << b

def _veil_divide(a, b):
    if type(a) is int and type(b) is int:
        _veil_tick(_veil_divcost(_veil_words(a), _veil_words(b)) + 1)

def _veil_o_floordiv(a, b):
    if type(a) is int and type(b) is int and -_veil_M < a < _veil_M and -_veil_M < b < _veil_M:
        return a // b
    _veil_divide(a, b)
    return _veil_sized(a // b)

def _veil_o_mod(a, b):
    if type(a) is int and type(b) is int and -_veil_M < a < _veil_M and -_veil_M < b < _veil_M:
        return a % b
    _veil_divide(a, b)
    return _veil_sized(a % b)

def _veil_o_div(a, b):
    if type(a) is int and type(b) is int and -_veil_M < a < _veil_M and -_veil_M < b < _veil_M:
        return a / b
    _veil_divide(a, b)
    return a / b

%(sums)s
def _veil_o_rshift(a, b):
    return _veil_sized(a >> b)

def _veil_o_and(a, b):
    return _veil_sized(a & b)

def _veil_o_or(a, b):
    return _veil_sized(a | b)

def _veil_o_xor(a, b):
    return _veil_sized(a ^ b)

def _veil_u_neg(a):
    return _veil_sized(-a)

def _veil_u_pos(a):
    return _veil_sized(+a)

def _veil_u_inv(a):
    return _veil_sized(~a)


def _veil_i_sub(a, b):
    return _veil_o_sub(a, b)

def _veil_i_mul(a, b):
    _veil_mulcharge(a, b)
    a *= b
    return a

def _veil_i_pow(a, b):
    _veil_tick(_veil_powcost(a, b, None))
    a **= b
    return a

def _veil_i_lshift(a, b):
    return _veil_o_lshift(a, b)

def _veil_i_floordiv(a, b):
    return _veil_o_floordiv(a, b)

def _veil_i_mod(a, b):
    return _veil_o_mod(a, b)

def _veil_i_div(a, b):
    return _veil_o_div(a, b)

def _veil_i_rshift(a, b):
    return _veil_o_rshift(a, b)

def _veil_i_and(a, b):
    a &= b
    return _veil_sized(a)

def _veil_i_or(a, b):
    a |= b
    return _veil_sized(a)

def _veil_i_xor(a, b):
    a ^= b
    return _veil_sized(a)

%(compares)s
def _veil_c_in(a, b):
    _veil_in(a, b)
    return a in b

def _veil_c_notin(a, b):
    _veil_in(a, b)
    return a not in b

def _veil_slice(o, lo, hi, st):
    return _veil_sized(o[lo:hi:st])

def _veil_materialize(a):
    if a and type(a[0]) not in _veil_CON:
        return (_veil_sized(list(a[0])), *a[1:])
    return a
"""

_COMPARE_TEMPLATE: Final = """
def _veil_c_{name}(a, b):
    if type(a) is int and type(b) is int and (-_veil_M < a < _veil_M or -_veil_M < b < _veil_M):
        return a {symbol} b
    _veil_cmp(a, b)
    return a {symbol} b
"""
_SUM_TEMPLATE: Final = """
def _veil_{name}(a, b):
    {statement}
    t = type(r)
    if t is int:
        if -_veil_M < r < _veil_M:
            return r
    elif t is float:
        return r
    return _veil_sized(r)
"""
"""Add and subtract: charged by the result, after a fast path for small numbers (inlined in
each, because a shared helper would cost a call on the hottest operations)."""
_SUMS: Final = {"o_add": "r = a + b", "o_sub": "r = a - b", "i_add": "a += b\n    r = a"}

_COMPARE_SYMBOLS: Final = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

_BUILTIN_TEMPLATE: Final = """
def _veil_b_{name}(*a, **k):
    {fast}a = {materialize}
    n = {pre}
    for x in a:
        n += _veil_sz(x)
    if n:
        _veil_tick(n)
    return _veil_sized({name}(*a, **k))
"""

_METHOD_TEMPLATE: Final = """
def _veil_m_{name}(o, *a, **k):
    n = _veil_sz(o) + {pre}
    for x in a:
        n += _veil_sz(x)
    if n:
        _veil_tick(n)
    r = o.{name}(*a, **k)
    {post}
    return r
"""

_ATTRIBUTE_TEMPLATE: Final = """
def _veil_a_{name}(o):
    if type(o) in _veil_BT:
        raise TypeError("call {name}() on a built-in value directly; it cannot be taken as a value")
    return o.{name}
"""

_BUILTIN_PRE: Final = {
    "sorted": "_veil_sortcost(a[0]) if a else 0",
    "min": "_veil_seqcost(a[0] if len(a) == 1 else list(a))",
    "max": "_veil_seqcost(a[0] if len(a) == 1 else list(a))",
    "sum": "_veil_seqcost(a[0]) if a else 0",
    "pow": "_veil_powcost(a[0], a[1], a[2] if len(a) > 2 else None) if len(a) > 1 else 0",
    "divmod": "_veil_divcost(_veil_words(a[0]), _veil_words(a[1]))"
    " if len(a) == 2 and type(a[0]) is int and type(a[1]) is int else 0",
    "any": "_veil_seqcost(a[0]) if a else 0",
    "all": "_veil_seqcost(a[0]) if a else 0",
}
_MATERIALIZE: Final = frozenset({"sorted", "min", "max", "sum"})


def wrappers(builtins: frozenset[str], methods: frozenset[str], attributes: frozenset[str]) -> str:
    """Monty source of the ``_veil_b_*``, ``_veil_m_*`` and ``_veil_a_*`` wrappers one agent uses
    (only those, so the session each invocation restores stays small)."""
    parts: list[str] = []
    for name in sorted(builtins):
        materialize = "_veil_materialize(a)" if name in _MATERIALIZE else "a"
        if name in ("min", "max"):
            materialize = "_veil_materialize(a) if len(a) == 1 else a"
        fast = ""
        if name in ("str", "int", "float", "bool", "abs", "hex", "repr"):
            # one small scalar: the common call, at the cost of a plain call
            fast = (
                "if len(a) == 1 and not k and (type(a[0]) is float or (type(a[0]) is int"
                f" and -_veil_M < a[0] < _veil_M)):\n        return {name}(a[0])\n    "
            )
        parts.append(
            _BUILTIN_TEMPLATE.format(
                name=name, fast=fast, materialize=materialize, pre=_BUILTIN_PRE.get(name, "0")
            )
        )
    for name in sorted(methods):
        post = (
            "_veil_tick(len(r) // _veil_JPT) if type(r) in _veil_STR else None"
            if name in _POST_JSON
            else "_veil_sized(r)"
        )
        parts.append(_METHOD_TEMPLATE.format(name=name, pre=_SPECIAL_PRE.get(name, "0"), post=post))
    for name in sorted(attributes):
        parts.append(_ATTRIBUTE_TEMPLATE.format(name=name))
    return "".join(parts)


def base_prelude(load_ticks: int, operators: frozenset[str]) -> str:
    """The cost functions a Python agent session starts with: every helper, and of the operator
    and comparison wrappers only those in ``operators`` (each is restored on every call)."""
    values = {
        "load_ticks": load_ticks,
        "cpt": CHARS_PER_TICK,
        "wpt": WORDS_PER_TICK,
        "jpt": JSON_CHARS_PER_TICK,
        "rpt": REPEAT_CHARS_PER_TICK,
    }
    text = BASE_PRELUDE
    for key, value in values.items():
        text = text.replace(f"%({key})d", str(value))
    compares = "".join(
        _COMPARE_TEMPLATE.format(name=name, symbol=symbol)
        for name, symbol in _COMPARE_SYMBOLS.items()
    )
    sums = "".join(
        _SUM_TEMPLATE.format(name=name, statement=statement) for name, statement in _SUMS.items()
    )
    text = text.replace("%(compares)s", compares).replace("%(sums)s", sums)
    in_place = {"_veil_o_" + name[8:] for name in operators if name.startswith("_veil_i_")}
    needed = operators | in_place
    header, *functions = text.split("\ndef ")
    kept = [f for f in functions if not OPERATOR_WRAPPER.match(f) or f.split("(", 1)[0] in needed]
    return "\ndef ".join([header, *kept])
