"""Limits and fixed parameters of the agent sandboxes, named once.
Per-cluster values override the defaults through ``veilnet.sandbox.Limits``."""

from typing import Final

DEFAULT_FUEL: Final = 1_000_000_000
"""Fuel per invocation. JS: wasm instructions (wasmtime fuel). Python: metered ticks times
``PY_FUEL_PER_TICK`` (ticks follow real cost: see ``sandbox/_pymeter.py``); about 1 s either way."""

PY_FUEL_PER_TICK: Final = 50
"""Fuel charged per Python tick (about 50 ns of Monty work), so one budget means roughly the
same time in both languages."""

HOST_CALL_FUEL: Final = 10_000
"""Fuel charged per host call on top of the guest's own work (both languages)."""

DEFAULT_MEMORY_BYTES: Final = 32 * 1024 * 1024
"""Guest heap (Python) or wasm linear memory (JS) per invocation."""

DEFAULT_STACK_DEPTH: Final = 200
"""Python recursion limit; JS derives a native stack size from it (``JS_STACK_BYTES_PER_FRAME``)."""

JS_STACK_BYTES_PER_FRAME: Final = 1_024
"""QuickJS max stack size = ``stack_depth * JS_STACK_BYTES_PER_FRAME``."""

DEFAULT_CALL_DEPTH: Final = 4
"""Agent-to-agent nesting: a command at depth 0 may reach depth ``call_depth``."""

DEFAULT_PAYLOAD_BYTES: Final = 256 * 1024
"""Largest canonical-JSON payload into an entry point or through ``call``."""

DEFAULT_OUTPUT_BYTES: Final = 256 * 1024
"""Largest canonical-JSON result, event list, or write set out of one invocation."""

DEFAULT_HOST_CALLS: Final = 256
"""Host calls per invocation (Monty caps a session at 1,000 suspensions; we stay below)."""

DEFAULT_EVENTS: Final = 64
"""Events per invocation."""

DEFAULT_WALL_CLOCK_S: Final = 5.0
"""Wall-clock backstop per invocation. NOT deterministic: a hit means abort, never commit."""

MAX_KEY_BYTES: Final = 256
"""Longest state key (UTF-8)."""

MAX_VALUE_BYTES: Final = 64 * 1024
"""Largest canonical-JSON state value."""

MAX_JSON_DEPTH: Final = 64
"""Deepest JSON nesting accepted across the boundary."""

HTTP_TIMEOUT_S: Final = 10.0
HTTP_MAX_BODY_BYTES: Final = 2 * 1024 * 1024
HTTP_MAX_BATCH: Final = 5
"""``http.fetch`` limits (query and job modes only), as in Phala's pink runtime."""

MAX_JOB_PAYLOAD_BYTES: Final = 4096
"""Largest payload of a standing job an agent sets (``Bus.schedule``'s bound)."""

PY_ALLOWED_IMPORTS: Final = frozenset({"json", "math", "random", "typing", "base64", "hashlib"})
"""Modules a Python agent may import; ``random`` is reseeded per invocation from ``random()``."""

PY_FORBIDDEN_NAMES: Final = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "input",
        "breakpoint",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "exit",
        "quit",
        "help",
        "fetch",
        "memoryview",
    }
)
"""Builtins a Python agent may not name (reflection, I/O, dynamic code)."""

PY_ALLOWED_DUNDER_DEFS: Final = frozenset({"__init__", "__repr__", "__str__", "__eq__", "__len__"})
"""Dunder methods a Python agent class may define (it may never *name* any other dunder)."""

RESERVED_PREFIX: Final = "_veil"
"""Identifiers the sandbox prelude uses; agent code may not use them."""
