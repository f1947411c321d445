"""JavaScript agents on QuickJS compiled to wasm (the guest shipped in ``quickjs-rs``), driven by
our own lean host loop on ``wasmtime`` with fuel, store memory limits and deterministic WASI.

Theory of operation: ``compile`` instantiates the guest once per agent, installs the prelude and
evaluates the agent's ES module, then copies the whole linear memory (plus the stack pointer) as
the agent's clean image. Every invocation restores that image (in place into the warm instance
when its memory has not grown, else into a fresh instance; the zero stack as fresh zero pages)
so all replicas start from identical bytes, sets the fuel, and makes exactly one guest call,
``__veil_invoke(json)``, which returns result, buffered state writes and events as one JSON
string. Host calls arrive through one
import (``env.host_call``) carrying ``[op, args]`` as JSON. A refusal raises inside the import,
which traps the guest: no JavaScript ``catch`` can intercept it. The clock reads the block
timestamp, ``random_get`` a hash stream of it; stdout/stderr are discarded; files don't exist.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import struct
import sys
import threading
import time
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

import wasmtime
from wasmtime import _ffi
from wasmtime._bindings import _wasmtime_context_get_fuel as _get_fuel
from wasmtime._bindings import _wasmtime_context_set_fuel as _set_fuel
from wasmtime._bindings import _wasmtime_func_call_unchecked as _call_unchecked
from wasmtime._bindings import _wasmtime_memory_data as _memory_data
from wasmtime._bindings import _wasmtime_memory_data_size as _memory_data_size

from veilnet.sandbox import constants as c
from veilnet.sandbox._bridge import Bridge, failure
from veilnet.sandbox._jsprelude import CTX_FIELDS, PRELUDE
from veilnet.sandbox.errors import (
    SandboxAgentError,
    SandboxCallDepth,
    SandboxCompileError,
    SandboxError,
    SandboxForbidden,
    SandboxInternalError,
    SandboxMemoryLimit,
    SandboxOutOfFuel,
    SandboxTimeout,
)
from veilnet.sandbox.interfaces import Context, Entry, HostAPI, JSONValue, Limits, Outcome

_STATUS_OK = 0
_STATUS_JS_ERROR = 1
_PAGE = 65536
_SCRATCH_SLOTS = 8
"""The start of each agent's scratch allocation: the call's argument and result handles."""
_TEXT_BUFFER = 4096
"""Then a buffer strings pass through on their way into the guest: an invocation's input and
most host call answers fit, and need no allocation and free of their own."""
_LOAD_FUEL = 2_000_000_000
_ERRNO_BADF = 8
_ERRNO_NOSYS = 52
_IO_CALLS: Final = frozenset({"http.fetch", "llm.chat", "evm.call"})
_HOST_FN = b"__veil_host"
_CHECK_AGENT = (
    b"(function () { const a = globalThis.__veil_agent;"
    b" if (a === null || typeof a !== 'object' || a instanceof Promise"
    b" || !('handle' in a || 'query' in a || 'init' in a || 'job' in a))"
    b" throw new Error('module failed or exports no entry point'); })();"
)


_HOST = threading.local()
"""The exception a host import raised on this thread, for the trap it caused to report. Kept
per thread (wasmtime-py kept one for the whole process): with a query's agent and a command's
running at once, a trap would report the other thread's exception, and a command's outcome
could differ between replicas."""


def _raw_import(fn: Any, params: list[str], result: bool) -> Any:
    """A host import as wasmtime's unchecked callback: raw values in and out, with none of
    wasmtime-py's per-call type conversion. What ``fn`` raises is noted on its thread (see
    ``_HOST``) and becomes a trap."""
    getters = tuple(params)

    def callback(_env: Any, _caller: Any, vals: Any, _count: int) -> int:
        try:
            value = fn(*[getattr(vals[i], kind) for i, kind in enumerate(getters)])
            if result:
                vals[0].i32 = value
            return 0
        except BaseException as exc:
            _HOST.exc = exc
            trap = wasmtime.Trap("python exception")._consume()
            return ctypes.cast(trap, ctypes.c_void_p).value or 0

    return _ffi.wasmtime_func_unchecked_callback_t(callback)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
]  # fmt: skip
_MAP_FIXED = 0x10  # Linux; the mmap module does not export it


def _zero(address: int, length: int) -> bool:
    """Zero ``[address, address + length)`` of a guest memory. Whole host pages on Linux get
    fresh anonymous pages mapped over them: they read as zeros, as a memset would leave them,
    but cost nothing until touched. A call dirties a few pages of the 1 MiB zero stack;
    clearing all of it each time cost more than the rest of the restore and pushed the core's
    own data out of the CPU cache. Elsewhere a memset. False: the kernel refused the mapping
    (out of memory), and the range may be unmapped now."""
    if sys.platform != "linux" or address % mmap.PAGESIZE or length % mmap.PAGESIZE:
        ctypes.memset(address, 0, length)
        return True
    mapped = _libc.mmap(
        address,
        length,
        mmap.PROT_READ | mmap.PROT_WRITE,
        mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED,
        -1,
        0,
    )
    return bool(mapped == address)


# The imports carry no per-function data to release (``_imports`` keeps the callbacks alive).
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _env: None)


def _take_host_exception() -> BaseException | None:
    found: BaseException | None = getattr(_HOST, "exc", None)
    if found is not None:
        _HOST.exc = None
    return found


class _FastFunc:
    """Calls an all-``i32`` export without wasmtime-py's per-call type introspection (~10x less
    overhead); traps still surface as ``wasmtime.Trap``/``WasmtimeError``, or as the exception
    a host import of this thread raised."""

    __slots__ = (
        "_context",
        "_func",
        "_nparams",
        "_nresults",
        "_nvals",
        "_slots",
        "_trap",
        "_trap_ref",
        "_vals",
    )

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func) -> None:
        ty = func.type(store)
        if any(p != wasmtime.ValType.i32() for p in [*ty.params, *ty.results]):
            raise SandboxInternalError("guest export is not all-i32")
        if len(ty.results) > 1:
            raise SandboxInternalError("guest export returns more than one value")
        self._context = store._context()
        self._func = ctypes.byref(func._func)
        self._nparams = len(ty.params)
        self._nresults = len(ty.results)
        # wasmtime's unchecked call takes the arguments and returns the results in one array
        # of raw values: the types were checked above, once, so no per-call conversion is due.
        self._nvals = max(1, self._nparams, len(ty.results))
        self._vals = (_ffi.wasmtime_val_raw_t * self._nvals)()
        # views of the array's items, made once (indexing the array makes a new one each time)
        self._slots = tuple(self._vals[i] for i in range(self._nvals))
        self._new_trap_slot()

    def _new_trap_slot(self) -> None:
        # a trap, once returned, is owned by the wasmtime.Trap wrapping this very pointer
        self._trap = ctypes.POINTER(_ffi.wasm_trap_t)()
        self._trap_ref = ctypes.byref(self._trap)

    def __call__(self, *args: int) -> int:
        if len(args) != self._nparams:
            raise SandboxInternalError("wrong number of arguments to a guest export")
        slots = self._slots
        for slot, value in zip(slots, args, strict=False):  # slots: at least as many
            slot.i32 = value
        # wasmtime-py's enter_wasm, inlined (a generator context manager costs more than the
        # call into a small export): a trap, or an exception a host import of this thread
        # raised, surfaces.
        try:
            error = _call_unchecked(
                self._context, self._func, self._vals, self._nvals, self._trap_ref
            )
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)
            if self._trap:
                trapped = wasmtime.Trap._from_ptr(self._trap)
                self._new_trap_slot()
                raised = _take_host_exception()
                if raised is not None:
                    raise raised
                raise trapped
        except wasmtime.WasmtimeError:
            raised = _take_host_exception()
            if raised is not None:
                raise raised from None
            raise
        return int(slots[0].i32) if self._nresults else 0


class _GuestTrap(Exception):
    """Raised inside a host import to stop the guest (the cause is in the active ``_Run``)."""


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` without building an
encoder on every call (two or three calls an invocation)."""


_DECODE = json.JSONDecoder().decode


def _guest_json(text: bytes) -> Any:
    """``json.loads`` of JSON text a guest wrote, less its encoding detection: the guest writes
    UTF-8 (a lone surrogate as QuickJS encodes it, which ``json.loads`` lets through too), and
    its text starts with ``[`` or ``{``, never a byte-order mark.

    Raises:
        ValueError: not JSON (``UnicodeDecodeError`` and ``JSONDecodeError`` are ValueErrors).
    """
    return _DECODE(text.decode("utf-8", "surrogatepass"))


def _trap_reason(trapped: BaseException) -> str:
    """A trap's reason without its backtrace (the same on every replica either way)."""
    if isinstance(trapped, _GuestTrap):
        return str(trapped)
    return str(trapped).split("\n", 1)[0][:120]


def _compact(value: JSONValue) -> str:
    """JSON text with no whitespace and no raw newline (the prelude splits its input at them)."""
    return _COMPACT(value)


def _guest_wasm() -> bytes:
    return (files("quickjs_rs") / "_guest.wasm").read_bytes()


@dataclass(slots=True)
class _Run:
    """Per-call state the shared imports route to (thread-local)."""

    instance: _Instance
    bridge: Bridge | None = None
    clock_ns: int = 0
    rng_seed: bytes = b""
    """Empty until the guest first asks WASI for random bytes (rare: QuickJS seeds itself at
    load); then derived from ``ctx``."""
    ctx: Context | None = None
    rng_counter: int = 0
    deadline: float = 0.0
    timed_out: bool = False
    forbidden_import: str | None = None
    text_buffer: int = 0
    """Where host call answers are written for the guest to copy (0: allocate each one)."""


class _Instance:
    """One guest instance: store, memory and the exports we call."""

    def __init__(self, engine: JSEngine, memory_bytes: int) -> None:
        self.store = wasmtime.Store(engine.engine)
        self.store.set_limits(memory_size=memory_bytes)
        self.store.set_fuel(_LOAD_FUEL)
        try:
            self.instance = engine.linker.instantiate(self.store, engine.module)
        finally:
            _HOST.exc = None  # wasmtime-py raised (or dropped) what an import raised here
        exports = self.instance.exports(self.store)
        self.memory: wasmtime.Memory = exports["memory"]  # type: ignore[assignment]
        self.sp: wasmtime.Global = exports["__stack_pointer"]  # type: ignore[assignment]
        # wasmtime-py's set_value introspects the global's type on every call (about 80 us, a
        # sixth of a query): the i32 value is written through the C API instead.
        self._sp_ref = ctypes.byref(self.sp._global)
        self._sp_val = _ffi.wasmtime_val_t()
        self._sp_val.kind = _ffi.WASMTIME_I32
        # The same for reads and writes of linear memory (wasmtime-py builds a ctypes array
        # type per access): the base and size are read through the C API, then memmove.
        self._context = self.store._context()
        self._memory_ref = ctypes.byref(self.memory._memory)
        self._base = 0
        self._base_size = -1
        """The memory's base address, as read when its size was ``_base_size``."""
        self._fuel = ctypes.c_uint64(0)
        self._fuel_ref = ctypes.byref(self._fuel)
        self.fn: dict[str, _FastFunc] = {}
        for name in (
            "qjs_alloc", "qjs_free", "qjs_last_len", "qjs_last_ptr", "qjs_result_free",
            "new_string", "get_string", "new_function", "global_object", "set_prop", "get_prop",
            "eval_code", "eval_module", "call_function", "free_value", "last_exception",
            "set_memory_limit", "set_max_stack_size",
        ):  # fmt: skip
            self.fn[name] = _FastFunc(self.store, exports[name])  # type: ignore[arg-type]
        self._new_string = self.fn["new_string"]
        self._get_string = self.fn["get_string"]
        self._last_len = self.fn["qjs_last_len"]
        self._last_ptr = self.fn["qjs_last_ptr"]
        self._result_free = self.fn["qjs_result_free"]
        self.poisoned = False

    def call(self, name: str, *args: int) -> int:
        return self.fn[name](*args)

    def set_sp(self, value: int) -> None:
        self._sp_val.of.i32 = value
        error = _ffi.wasmtime_global_set(self._context, self._sp_ref, ctypes.byref(self._sp_val))
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)

    def _address(self, ptr: int, length: int) -> int:
        """The host address of guest bytes ``[ptr, ptr + length)``, checked to lie in memory.
        Memory may have grown, and moved, since the last access; it moves only when it grows,
        so its base is read again whenever its size is not the one the base was read at."""
        size = _memory_data_size(self._context, self._memory_ref)
        if ptr < 0 or length < 0 or ptr + length > size:
            raise SandboxInternalError("guest pointer out of range")
        if size != self._base_size:
            base = _memory_data(self._context, self._memory_ref)
            self._base = ctypes.cast(base, ctypes.c_void_p).value or 0
            self._base_size = size
        return self._base + ptr

    def size(self) -> int:
        return int(_memory_data_size(self._context, self._memory_ref))

    def get_fuel(self) -> int:
        """The store's fuel left (``Store.get_fuel`` through the C API directly)."""
        error = _get_fuel(self._context, self._fuel_ref)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        return int(self._fuel.value)

    def set_fuel(self, fuel: int) -> None:
        error = _set_fuel(self._context, fuel)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)

    def read(self, ptr: int, length: int) -> bytes:
        return ctypes.string_at(self._address(ptr, length), length)

    def write(self, ptr: int, data: bytes) -> None:
        ctypes.memmove(self._address(ptr, len(data)), data, len(data))

    def write_new(self, data: bytes) -> int:
        ptr = int(self.call("qjs_alloc", max(1, len(data))))
        if ptr == 0:
            raise SandboxMemoryLimit("JavaScript agent reached its memory limit")
        if data:
            self.write(ptr, data)
        return ptr

    def new_string(self, text: bytes, *, buffer: int = 0) -> int:
        """A guest string of ``text``, copied through ``buffer`` (``_TEXT_BUFFER`` bytes the
        agent's image keeps allocated) when it fits, else through a fresh allocation."""
        if buffer and len(text) <= _TEXT_BUFFER:
            self.write(buffer, text)
            return self._new_string(buffer, len(text))
        ptr = self.write_new(text)
        try:
            return int(self.call("new_string", ptr, len(text)))
        finally:
            self.call("qjs_free", ptr, max(1, len(text)))

    def take_string(self, handle: int, *, free: bool = True) -> bytes | None:
        if self._get_string(handle) != _STATUS_OK:
            return None
        n = self._last_len()
        data = self.read(self._last_ptr(), n) if n else b""
        if free:
            self._result_free()
        return data

    def out_i32(self, fn: str, *args: int) -> tuple[int, int]:
        slot = int(self.call("qjs_alloc", 4))
        try:
            status = int(self.call(fn, *args, slot))
            (value,) = struct.unpack("<i", self.read(slot, 4))
        finally:
            self.call("qjs_free", slot, 4)
        return status, value

    def exception(self) -> tuple[str, str]:
        status, exc = self.out_i32("last_exception")
        if status != _STATUS_OK:
            return "Error", "unknown error"
        try:
            parts = []
            for field in (b"name", b"message"):
                ptr = self.write_new(field)
                try:
                    st, handle = self.out_i32("get_prop", exc, ptr, len(field))
                finally:
                    self.call("qjs_free", ptr, len(field))
                text = self.take_string(handle) if st == _STATUS_OK else None
                if st == _STATUS_OK:
                    self.call("free_value", handle)
                parts.append((text or b"").decode("utf-8", "replace"))
            if not parts[0]:
                return "Error", "non-Error value thrown"
            return parts[0], parts[1]
        finally:
            self.call("free_value", exc)

    def close(self) -> None:
        self.store.close()


@dataclass(slots=True)
class JSAgent:
    """A compiled JS agent: its clean memory image and the handles valid within it.

    The image is kept as ``zeros`` zero bytes (the shadow stack below ``sp``, empty between
    invocations) followed by ``image``: a quarter of the memory, and a restore that clears the
    stack and copies the rest, which is cheaper than copying it all."""

    image: bytes
    zeros: int
    sp: int
    invoke_fn: int
    global_obj: int
    scratch: int
    memory_bytes: int
    stack_bytes: int
    warm: _Instance | None = None
    lock: threading.Lock | None = None


def _leading_zero_pages(memory: bytes) -> int:
    """How many bytes of whole zero 4 KiB pages ``memory`` starts with."""
    first = len(memory) - len(memory.lstrip(b"\0"))
    return first - first % 4096


class JSEngine:
    """Compiles the guest once per process and runs JS agents; thread-safe per agent."""

    def __init__(self) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.cranelift_nan_canonicalization = True
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module(self.engine, _guest_wasm())
        self._tls = threading.local()
        self.linker = self._linker()

    def close(self) -> None:
        return None

    def footprint(self, agent: JSAgent) -> int:
        """Bytes the agent holds parked: its clean image past the zero stack."""
        return len(agent.image)

    def park(self, agent: JSAgent) -> bool:
        """Drop the agent's warm instance (its linear memory) and keep its clean image: its next
        invocation instantiates afresh, about a millisecond against tens for a compile. An
        agent being invoked right now is left as it is. Returns whether the agent had an
        instance (parked now, or left while it runs); False if it was parked already."""
        assert agent.lock is not None
        if not agent.lock.acquire(blocking=False):
            return True
        try:
            if agent.warm is None:
                return False
            agent.warm.close()
            agent.warm = None
            return True
        finally:
            agent.lock.release()

    # ---- imports (registered once; they route to the thread's active _Run) ----

    def _run(self) -> _Run:
        run: _Run = self._tls.run
        return run

    def _linker(self) -> wasmtime.Linker:
        linker = wasmtime.Linker(self.engine)
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()

        kinds = {str(i32): "i32", str(i64): "i64"}
        self._imports: list[Any] = []  # the callbacks live as long as the linker

        def define(module: str, name: str, params: list[Any], results: list[Any], fn: Any) -> None:
            callback = _raw_import(fn, [kinds[str(p)] for p in params], bool(results))
            self._imports.append(callback)
            module_bytes, name_bytes = module.encode(), name.encode()
            ty = wasmtime.FuncType(params, results)  # held: the call reads it, not owns it
            error = _ffi.wasmtime_linker_define_func_unchecked(
                linker.ptr(),
                ctypes.create_string_buffer(module_bytes),
                len(module_bytes),
                ctypes.create_string_buffer(name_bytes),
                len(name_bytes),
                ty.ptr(),
                callback,
                None,
                _NO_FINALIZER,
            )
            if error:
                raise wasmtime.WasmtimeError._from_ptr(error)

        wasi = "wasi_snapshot_preview1"
        define(wasi, "random_get", [i32, i32], [i32], self._random_get)
        define(wasi, "environ_get", [i32, i32], [i32], lambda _a, _b: 0)
        define(wasi, "environ_sizes_get", [i32, i32], [i32], self._environ_sizes_get)
        define(wasi, "clock_time_get", [i32, i64, i32], [i32], self._clock_time_get)
        define(wasi, "fd_close", [i32], [i32], lambda _fd: _ERRNO_BADF)
        define(wasi, "fd_fdstat_get", [i32, i32], [i32], lambda _fd, _p: _ERRNO_BADF)
        define(wasi, "fd_seek", [i32, i64, i32, i32], [i32], lambda _a, _b, _c, _d: _ERRNO_BADF)
        define(wasi, "fd_write", [i32, i32, i32, i32], [i32], self._fd_write)
        define(wasi, "proc_exit", [i32], [], self._proc_exit)
        define("env", "host_interrupt", [], [i32], self._host_interrupt)
        define("env", "host_call", [i32] * 5, [i32], self._host_call)
        define("env", "host_module_normalize", [i32] * 5, [i32], self._module_normalize)
        define("env", "host_module_load", [i32] * 3, [i32], lambda _a, _b, _c: 0)
        return linker

    def _environ_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        inst = self._run().instance
        inst.write(count_ptr, b"\0" * 4)
        inst.write(size_ptr, b"\0" * 4)
        return 0

    def _clock_time_get(self, _clock: int, _precision: int, out_ptr: int) -> int:
        run = self._run()
        run.instance.write(out_ptr, struct.pack("<Q", run.clock_ns))
        return 0

    def _random_get(self, ptr: int, length: int) -> int:
        run = self._run()
        if not run.rng_seed and run.ctx is not None:
            ctx = run.ctx
            label = f"veil/js/{ctx.contract_id}/{ctx.block_number}/{ctx.depth}"
            run.rng_seed = hashlib.sha256(label.encode()).digest()
        out = b""
        while len(out) < length:
            run.rng_counter += 1
            out += hashlib.sha256(run.rng_seed + run.rng_counter.to_bytes(8, "big")).digest()
        run.instance.write(ptr, out[:length])
        return 0

    def _fd_write(self, _fd: int, iovs: int, iovs_len: int, nwritten_ptr: int) -> int:
        inst = self._run().instance
        total = 0
        raw = inst.read(iovs, 8 * iovs_len)
        for i in range(iovs_len):
            _ptr, length = struct.unpack_from("<II", raw, 8 * i)
            total += length
        inst.write(nwritten_ptr, struct.pack("<I", total))
        return 0

    def _proc_exit(self, _code: int) -> None:
        raise _GuestTrap("proc_exit")

    def _host_interrupt(self) -> int:
        run = self._run()
        if run.deadline and time.monotonic() > run.deadline:
            run.timed_out = True
            return 1
        return 0

    def _module_normalize(self, _b: int, _bl: int, spec_ptr: int, spec_len: int, _out: int) -> int:
        run = self._run()
        spec = run.instance.read(spec_ptr, min(spec_len, 64)).decode("utf-8", "replace")
        run.forbidden_import = spec
        return 0

    def _host_call(self, name_ptr: int, name_len: int, _this: int, argc: int, argv_ptr: int) -> int:
        run = self._run()
        inst = run.instance
        bridge = run.bridge
        if bridge is None or inst.read(name_ptr, name_len) != _HOST_FN or argc != 1:
            raise _GuestTrap("host call outside an invocation")
        (handle,) = struct.unpack("<i", inst.read(argv_ptr, 4))
        raw = inst.take_string(handle)
        if raw is None:
            raise _GuestTrap("malformed host call")
        name, space, encoded = raw.partition(b" ")
        try:
            op, args = name.decode("ascii"), _guest_json(encoded)
        except (ValueError, TypeError) as exc:
            raise _GuestTrap("malformed host call") from exc
        if not space or not isinstance(args, list):
            raise _GuestTrap("malformed host call")
        remaining = inst.get_fuel()

        def fuel_left() -> int:
            return max(0, remaining - c.HOST_CALL_FUEL)

        started = time.monotonic()
        try:
            value = bridge.dispatch(op, args, fuel_left)
        except (SandboxError, SandboxInternalError) as exc:
            raise _GuestTrap(str(op)) from exc
        if op in _IO_CALLS and run.deadline:
            # the backstop bounds the agent's own running time, not its I/O (limited apart)
            run.deadline += time.monotonic() - started
        charge = c.HOST_CALL_FUEL + bridge.nested_fuel
        bridge.nested_fuel = 0
        if charge > remaining:
            inst.set_fuel(0)
            bridge.abort = SandboxOutOfFuel(
                "JavaScript agent ran out of fuel", limit=bridge.limits.fuel
            )
            raise _GuestTrap("out of fuel")
        inst.set_fuel(remaining - charge)
        return inst.new_string(_COMPACT(value).encode(), buffer=run.text_buffer)

    # ---- compile / invoke ----

    def _with_run(self, run: _Run) -> None:
        self._tls.run = run

    def compile(self, code: bytes, limits: Limits) -> JSAgent:
        try:
            source = code.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SandboxCompileError("agent source is not UTF-8") from exc
        inst = _Instance(self, limits.memory_bytes)
        run = _Run(instance=inst, rng_seed=b"veil/js/load")
        self._with_run(run)
        stack_bytes = min(limits.stack_depth * c.JS_STACK_BYTES_PER_FRAME, 512 * 1024)
        try:
            inst.call("set_memory_limit", limits.memory_bytes)
            inst.call("set_max_stack_size", stack_bytes)
            name_ptr = inst.write_new(_HOST_FN)
            fn_handle = int(inst.call("new_function", name_ptr, len(_HOST_FN)))
            global_obj = int(inst.call("global_object"))
            if inst.call("set_prop", global_obj, name_ptr, len(_HOST_FN), fn_handle) != 0:
                raise SandboxInternalError("could not install the host function")
            inst.call("free_value", fn_handle)
            inst.call("qjs_free", name_ptr, len(_HOST_FN))
            self._eval(inst, PRELUDE.encode(), module=False, what="prelude")
            namespace = self._eval(inst, code, module=True, what="agent", source=source)
            if run.forbidden_import is not None:
                raise SandboxForbidden(
                    f"import of {run.forbidden_import!r} is not allowed",
                    module=run.forbidden_import,
                )
            key = b"__veil_agent"
            ptr = inst.write_new(key)
            inst.call("set_prop", global_obj, ptr, len(key), namespace)
            inst.call("qjs_free", ptr, len(key))
            inst.call("free_value", namespace)
            self._eval(inst, _CHECK_AGENT, module=False, what="agent module")
            key = b"__veil_invoke"
            ptr = inst.write_new(key)
            status, invoke_fn = inst.out_i32("get_prop", global_obj, ptr, len(key))
            inst.call("qjs_free", ptr, len(key))
            if status != _STATUS_OK:
                raise SandboxInternalError("prelude did not define __veil_invoke")
            scratch = inst.write_new(bytes(_SCRATCH_SLOTS + _TEXT_BUFFER))
            memory = inst.read(0, inst.size())
            sp = int(inst.sp.value(inst.store))
        except wasmtime.WasmtimeError as exc:
            inst.close()
            raise SandboxCompileError("agent module trapped while loading") from exc
        except SandboxError:
            inst.close()
            raise
        finally:
            self._tls.run = None
        zeros = _leading_zero_pages(memory)
        return JSAgent(
            image=memory[zeros:],
            zeros=zeros,
            sp=sp,
            invoke_fn=invoke_fn,
            global_obj=global_obj,
            scratch=scratch,
            memory_bytes=limits.memory_bytes,
            stack_bytes=stack_bytes,
            warm=inst,
            lock=threading.Lock(),
        )

    def _eval(
        self, inst: _Instance, code: bytes, *, module: bool, what: str, source: str = ""
    ) -> int:
        ptr = inst.write_new(code)
        try:
            if module:
                name = b"agent.js"
                name_ptr = inst.write_new(name)
                status, handle = inst.out_i32("eval_module", ptr, len(code), name_ptr, len(name))
                inst.call("qjs_free", name_ptr, len(name))
            else:
                status, handle = inst.out_i32("eval_code", ptr, len(code))
        finally:
            inst.call("qjs_free", ptr, max(1, len(code)))
        if status == _STATUS_JS_ERROR:
            kind, message = inst.exception()
            run = self._run()
            if run.forbidden_import is not None:
                raise SandboxForbidden(
                    f"import of {run.forbidden_import!r} is not allowed",
                    module=run.forbidden_import,
                )
            raise SandboxCompileError(f"{what} failed to load: {kind}: {message[:200]}")
        if status != _STATUS_OK:
            raise SandboxCompileError(f"{what} failed to load (status {status})")
        if not module:
            inst.call("free_value", handle)
        return handle

    def _restore(self, agent: JSAgent) -> _Instance:
        inst = agent.warm
        size = agent.zeros + len(agent.image)
        if inst is None or inst.poisoned or inst.size() != size:
            inst = self._fresh_instance(agent, size)
        base = inst._address(0, size)
        if not _zero(base, agent.zeros):
            # never touched again: a refused MAP_FIXED may have unmapped the range already
            inst = self._fresh_instance(agent, size)
            base = inst._address(0, size)
            ctypes.memset(base, 0, agent.zeros)
        ctypes.memmove(base + agent.zeros, agent.image, len(agent.image))
        inst.set_sp(agent.sp)
        return inst

    def _fresh_instance(self, agent: JSAgent, size: int) -> _Instance:
        """A new instance with ``size`` bytes of memory in place of the agent's warm one."""
        if agent.warm is not None:
            agent.warm.close()
            agent.warm = None
        inst = _Instance(self, agent.memory_bytes)
        pages = size // _PAGE - inst.memory.size(inst.store)
        if pages > 0:
            inst.memory.grow(inst.store, pages)
        agent.warm = inst
        return inst

    def invoke(
        self,
        agent: JSAgent,
        entry: Entry,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits,
    ) -> Outcome:
        assert agent.lock is not None
        with agent.lock:
            return self._invoke_locked(agent, entry, payload, host, ctx, limits)

    def _invoke_locked(
        self,
        agent: JSAgent,
        entry: Entry,
        payload: JSONValue,
        host: HostAPI,
        ctx: Context,
        limits: Limits,
    ) -> Outcome:
        bridge = Bridge(host, ctx, limits)
        inst = self._restore(agent)
        if limits.memory_bytes != agent.memory_bytes:
            inst.store.set_limits(memory_size=limits.memory_bytes)
        run = _Run(
            instance=inst,
            bridge=bridge,
            clock_ns=ctx.block_timestamp * 1_000_000_000,
            ctx=ctx,
            deadline=time.monotonic() + limits.wall_clock_s,
            text_buffer=agent.scratch + _SCRATCH_SLOTS,
        )
        outer = getattr(self._tls, "run", None)  # a nested agent call runs inside another
        self._with_run(run)
        # the prelude's __veil_invoke splits this at its two newlines (see _jsprelude)
        doc = ctx.to_json()
        request = "\n".join(
            (entry.value, _compact([doc[name] for name in CTX_FIELDS]), _compact(payload))
        ).encode()
        inst.set_fuel(limits.fuel)
        result_text: bytes | None = None
        trapped: BaseException | None = None
        status = _STATUS_OK
        kind = message = ""
        try:
            # Nothing allocated here is freed: the next invocation restores the clean image.
            arg = inst.new_string(request, buffer=run.text_buffer)
            inst.write(agent.scratch, struct.pack("<i", arg))
            argv, slot = agent.scratch, agent.scratch + 4
            status = inst.call("call_function", agent.invoke_fn, agent.global_obj, argv, 1, slot)
            (handle,) = struct.unpack("<i", inst.read(slot, 4))
            if status == _STATUS_OK:
                result_text = inst.take_string(handle, free=False)
            else:
                kind, message = inst.exception()
        except (wasmtime.WasmtimeError, wasmtime.Trap, _GuestTrap, SandboxError) as exc:
            trapped = exc
            inst.poisoned = True
        finally:
            self._tls.run = outer
            fuel_left = inst.get_fuel()
        fuel_used = limits.fuel - fuel_left
        memory_full = inst.size() + _PAGE > limits.memory_bytes
        if bridge.crash is not None:
            raise SandboxInternalError("host call failed") from bridge.crash
        if run.timed_out:
            inst.poisoned = True
            raise SandboxTimeout("JavaScript agent hit the wall-clock backstop")
        error: SandboxError | None = bridge.abort
        if error is None and trapped is not None:
            if isinstance(trapped, SandboxError):
                error = trapped
            elif fuel_left == 0:
                error = SandboxOutOfFuel("JavaScript agent ran out of fuel", limit=limits.fuel)
            elif memory_full:
                error = SandboxMemoryLimit("JavaScript agent reached its memory limit")
            elif "call stack exhausted" in str(trapped):
                error = SandboxCallDepth("JavaScript agent recursed too deeply", kind="stack")
            elif isinstance(trapped, wasmtime.Trap | _GuestTrap):
                # The guest runs the same bytes from the same image on every replica: a trap
                # is the agent's doing, and an internal error here would let one agent's
                # command stop every replica of its cluster at that block.
                reason = _trap_reason(trapped)
                error = SandboxAgentError(f"JavaScript agent stopped the engine: {reason}")
            else:
                raise SandboxInternalError("JavaScript engine failed") from trapped
        if error is None and memory_full:
            error = SandboxMemoryLimit("JavaScript agent reached its memory limit")
        if error is None and status != _STATUS_OK:
            if "out of memory" in message:
                error = SandboxMemoryLimit("JavaScript agent reached its memory limit")
            elif "stack overflow" in message:
                error = SandboxCallDepth("JavaScript agent recursed too deeply", kind="stack")
            else:
                error = bridge.uncaught(message) or SandboxAgentError(
                    f"agent threw {kind}: {message[:200]}", exception=kind
                )
        if error is not None:
            return failure(error, fuel_used=fuel_used, host_calls=bridge.calls)
        # What the guest returned is the same on every replica, and an agent can make it
        # anything (the prelude shares its realm): a malformed answer is the agent's failure.
        try:
            if result_text is None:
                raise SandboxAgentError("JavaScript agent returned no result text")
            try:
                output = _guest_json(result_text)
            except ValueError as exc:
                raise SandboxAgentError("JavaScript agent returned malformed JSON") from exc
            return bridge.finish(output, fuel_used=fuel_used)
        except SandboxError as exc:
            return failure(exc, fuel_used=fuel_used, host_calls=bridge.calls)
