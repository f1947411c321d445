"""The hostile corpus: agents aimed at each interpreter's limits, with the failure each must hit.
Run on two replicas by tests/sandbox, through real cores by tests/runtime, timed by the bench."""

# ruff: noqa: E501

from __future__ import annotations

from typing import Final

HOSTILE: Final[dict[str, tuple[str, str, str, str]]] = {
    # name: (js handle body, python handle body, js code, python code)
    "infinite_loop": (
        "while (true) {}",
        "while True:\n        pass",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "caught_infinite_loop": (
        "try { while (true) {} } catch (e) { return 1; }",
        "try:\n        while True:\n            pass\n    except Exception:\n        return 1",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "memory_bomb": (
        "const a = []; while (true) { a.push(new ArrayBuffer(1 << 20)); }",
        "a = []\n    while True:\n        a.append([len(a)] * 100000)",
        "sandbox_memory_limit",
        "sandbox_memory_limit",
    ),
    "deep_recursion": (
        "function f(n) { return f(n + 1) + 1; } return f(0);",
        "def f(n):\n        return f(n + 1) + 1\n    return f(0)",
        "sandbox_call_depth",
        "sandbox_call_depth",
    ),
    "caught_recursion_py_sticky": (
        "function f(n) { return f(n + 1) + 1; } return f(0);",
        "def f(n):\n        return f(n + 1) + 1\n    try:\n        return f(0)\n    except Exception:\n        return 0",
        "sandbox_call_depth",
        "sandbox_call_depth",
    ),
    "huge_output": (
        "return 'x'.repeat(300000);",
        "return 'x' * 300000",
        "sandbox_payload_too_large",
        "sandbox_payload_too_large",
    ),
    "fetch_in_command": (
        "return fetch({url: 'https://example.com'});",
        "return http.fetch({'url': 'https://example.com'})",
        "sandbox_forbidden",
        "sandbox_forbidden",
    ),
    # a failed host call is catchable, limit exhaustion is not: catching does not get past it
    "caught_host_call_limit": (
        "try { for (let i = 0; i < 1000; i++) state.get('k'); } catch (e) { return 'caught'; } return 1;",
        "try:\n        for i in range(1000):\n            state.get('k')\n    except Exception:\n        return 'caught'\n    return 1",
        "sandbox_host_call_limit",
        "sandbox_host_call_limit",
    ),
    "too_many_events": (
        "for (let i = 0; i < 1000; i++) emit(i); return 1;",
        "for i in range(1000):\n        emit(i)\n    return 1",
        "sandbox_host_call_limit",
        "sandbox_host_call_limit",
    ),
    "too_many_host_calls": (
        "for (let i = 0; i < 1000; i++) state.get('k'); return 1;",
        "for i in range(1000):\n        state.get('k')\n    return 1",
        "sandbox_host_call_limit",
        "sandbox_host_call_limit",
    ),
    "throws": (
        "throw new Error('boom');",
        "raise ValueError('boom')",
        "sandbox_agent_error",
        "sandbox_agent_error",
    ),
    "bigint_multiply": (
        "let x = 7n ** 200000n; let y = 0n; for (;;) { y = x * x; }",
        "x = 7 ** 200000\n    while True:\n        y = x * x",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "bigint_power_bomb": (
        "return (3n ** 100000000n) > 0n;",
        "return 3 ** 100000000 > 0",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "shift_bomb": (
        "return (1n << 4000000000n) > 0n;",
        "return (1 << 4000000000) > 0",
        "sandbox_agent_error",
        "sandbox_out_of_fuel",
    ),
    "bigint_divide": (
        "const x = 7n ** 300000n; const y = x - 1n; let q = 0n; for (;;) { q = (x * y) / y; }",
        "x = 7 ** 300000\n    y = x - 1\n    while True:\n        q = divmod(x * y, y)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "modpow_bomb": (
        "let r = 1n; const m = 10n ** 5000n + 1n; for (let i = 0; ; i++) { r = (r * 3n) % m; }",
        "return pow(3, 10 ** 100000, 10 ** 5000 + 1)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "factorial_bomb": (
        "let f = 1n; for (let i = 1n; ; i++) { f *= i; }",
        "import math\n    return math.factorial(10 ** 7) > 0",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "string_repeat_loop": (
        "for (;;) { const t = 'x'.repeat(1000000); }",
        "while True:\n        t = 'x' * 1000000",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "bytes_repeat_loop": (
        "for (;;) { const t = new Uint8Array(1000000).fill(7); }",
        "while True:\n        t = b'x' * 1000000",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "slice_copy_loop": (
        "const s = 'ab'.repeat(1000000); for (;;) { const t = s.slice(1).split(''); }",
        "s = 'ab' * 1000000\n    while True:\n        t = s[1:]",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "sort_loop": (
        "const a = []; for (let i = 0; i < 100000; i++) a.push((i * 7919) % 100003); for (;;) { a.slice().sort((p, q) => p - q); }",
        "a = [(i * 7919) % 100003 for i in range(100000)]\n    while True:\n        b = sorted(a)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "sort_method_with_key": (
        "const a = []; for (let i = 0; i < 50000; i++) a.push(String(i)); for (;;) { a.sort((p, q) => p.length - q.length || (p < q ? -1 : 1)); a.reverse(); }",
        "a = [str(i) for i in range(50000)]\n    while True:\n        a.sort(key=lambda v: -len(v))",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "big_collection": (
        "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i, i]);",
        "d = {i: [i, i] for i in range(100000000)}",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "json_deep_values": (
        "let v = 0; for (let i = 0; i < 60; i++) v = [v, {a: v}]; for (;;) JSON.stringify([v]);",
        "import json\n    v = 0\n    for i in range(40):\n        v = [v, v]\n    while True:\n        t = json.dumps(v)",
        "sandbox_out_of_fuel",
        "sandbox_memory_limit",
    ),
    "json_parse_loop": (
        "const t = JSON.stringify(Array.from({length: 200000}, (_, i) => i)); for (;;) JSON.parse(t);",
        "import json\n    t = json.dumps(list(range(200000)))\n    while True:\n        v = json.loads(t)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "aliased_compare": (
        "const a = Array(1000).fill(0); const b = Array(1000).fill(a); const c = Array(1000).fill(b); return JSON.stringify(c) === JSON.stringify(c);",
        "a = [0] * 1000\n    b = [a] * 1000\n    c = [b] * 1000\n    a2 = [0] * 1000\n    b2 = [a2] * 1000\n    c2 = [b2] * 1000\n    return c == c2",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "search_loop": (
        "const a = Array.from({length: 1000000}, (_, i) => i); for (;;) a.includes(-1);",
        "a = list(range(200000))\n    while True:\n        t = -1 in a",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "join_loop": (
        "const p = Array(100000).fill('abcdefgh'); for (;;) p.join('-');",
        "p = ['abcdefgh'] * 100000\n    while True:\n        t = '-'.join(p)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "replace_loop": (
        "const s = 'ab'.repeat(1000000); for (;;) s.replaceAll('a', 'cc');",
        "s = 'ab' * 1000000\n    while True:\n        t = s.replace('a', 'cc')",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "hash_loop": (
        "const s = 'ab'.repeat(1000000); for (;;) s.split('').reverse();",
        "import hashlib\n    s = b'ab' * 1000000\n    while True:\n        t = hashlib.sha256(s).hexdigest()",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "regex_backtracking": (
        "return /^(a+)+$/.test('a'.repeat(40) + 'b');",
        "s = 'ab' * 1000000\n    while True:\n        t = s.upper().lower()",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "format_width": (
        "for (;;) { const t = '1'.padStart(5000000); }",
        "while True:\n        t = f'{1:>5000000}'",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "concat_doubling": (
        "let s = 'x'; for (;;) s = s + s + '!';",
        "s = 'x'\n    while True:\n        s = s + s",
        "sandbox_agent_error",
        "sandbox_out_of_fuel",
    ),
    "unpack_copy": (
        "const a = Array(500000).fill(1); for (;;) { const b = [...a, ...a]; }",
        "a = [1] * 500000\n    while True:\n        b = [*a, *a]",
        "sandbox_out_of_fuel",
        "sandbox_memory_limit",
    ),
    "reduce_loop": (
        "const a = Array.from({length: 1000000}, (_, i) => i); for (;;) Math.max(...a.slice(0, 50000));",
        "a = list(range(200000))\n    while True:\n        t = max(a) + sum(a)",
        "sandbox_out_of_fuel",
        "sandbox_out_of_fuel",
    ),
    "set_algebra": (
        "const a = new Set(Array.from({length: 200000}, (_, i) => i)); for (;;) new Set([...a].filter(x => a.has(x)));",
        "a = set(range(200000))\n    b = set(range(100000, 300000))\n    while True:\n        t = (a | b) - (a & b)",
        "sandbox_out_of_fuel",
        "sandbox_memory_limit",
    ),
}


def hostile_agent(language: str, body: str) -> bytes:
    """An agent whose ``handle`` writes state, then runs ``body`` (which must fail)."""
    if language == "js":
        return f"export function handle(cmd) {{ state.set('touched', 1); {body} }}".encode()
    return f"def handle(cmd):\n    state.set('touched', 1)\n    {body}\n".encode()
