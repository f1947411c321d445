"""The trusted JavaScript prelude evaluated in every QuickJS guest before the agent module.
It builds the host API (state overlay, ctx, emit, call, ...) over one raw host function."""

# ruff: noqa: E501  (JavaScript source below)
from typing import Final

CTX_FIELDS: Final = ("caller", "contract_id", "block_number", "block_timestamp", "mode", "depth")
"""The fields of ``ctx``, in the order the host sends their values (``Context.to_json``'s keys):
a JSON array parses in half the fuel of an object with its keys."""

_PRELUDE = r"""
"use strict";
(function () {
  const H = globalThis.__veil_host;
  delete globalThis.__veil_host;
  const P = JSON.parse, S = JSON.stringify;
  let W = new Map(), EV = [], CTX = null, CTXS = null;
  class VeilError extends Error {
    constructor(e) { super(e.code + ": " + e.message); this.name = "VeilError"; this.code = e.code; this.details = e.details; }
  }
  // A host call is its operation's name, a space, then its arguments as a JSON array: one
  // stringify of the arguments, not of [op, args] (stringify is most of a call's fuel).
  function host(op, args) {
    const r = P(H(op + " " + S(args)));
    if (r[0] !== 0) throw new VeilError(r[1]);
    return r[1];
  }
  function key(k) {
    if (typeof k !== "string" || k.length === 0) throw new TypeError("state keys must be non-empty strings");
    return k;
  }
  const state = Object.freeze({
    get(k) { key(k); if (W.has(k)) { const v = W.get(k); return v === null ? null : P(v); } return host("state.get", [k]); },
    set(k, v) {
      key(k);
      if (v === undefined || v === null) throw new TypeError("state.set needs a value; use state.delete");
      const text = S(v);  // undefined for a function or a symbol
      if (typeof text !== "string") throw new TypeError("state.set takes a JSON value");
      W.set(k, text);
    },
    delete(k) { key(k); W.set(k, null); },
    keys(prefix) {
      prefix = prefix === undefined ? "" : String(prefix);
      const out = new Set(host("state.keys", [prefix]));
      for (const [k, v] of W) { if (k.startsWith(prefix)) { if (v === null) out.delete(k); else out.add(k); } }
      return Array.from(out).sort();
    },
  });
  const secrets = Object.freeze({ get(name) { return host("secrets.get", [String(name)]); } });
  const http = Object.freeze({ fetch(request) { return host("http.fetch", [request]); } });
  const llm = Object.freeze({ chat(request) { return host("llm.chat", [request]); } });
  const evm = Object.freeze({ call(request) { return host("evm.call", [request]); } });
  const jobs = Object.freeze({
    schedule(request) { return host("jobs.schedule", [request === undefined ? null : request]); },
    cancel(id) { return host("jobs.cancel", [id]); },
  });
  function random() { return host("random", []); }
  const defs = {
    state, secrets, http, llm, jobs, evm, random, VeilError,
    emit(event) {
      // kept as JSON text: a copy as of the emit, and no parse and stringify again at the end
      const text = S(event === undefined ? null : event);
      if (typeof text !== "string") throw new TypeError("emit takes a JSON value");
      EV.push(text);
    },
    call(contractId, msg) { return host("call", [String(contractId), msg === undefined ? null : msg]); },
    derive_key(salt) { return host("derive_key", [String(salt)]); },
    sign(payload) { return host("sign", [payload === undefined ? null : payload]); },
    fetch(request) { return host("http.fetch", [request]); },
  };
  for (const name of Object.keys(defs)) {
    Object.defineProperty(globalThis, name, { value: defs[name], writable: false, configurable: false });
  }
  // ctx is parsed when an agent first reads it: many entry points never do
  Object.defineProperty(globalThis, "ctx", {
    get() {
      if (CTX === null && CTXS !== null) { const a = P(CTXS); CTX = Object.freeze(__CTX_OBJECT__); }
      return CTX;
    },
    configurable: false,
  });
  Math.random = random;
  // input: the entry point's name, a newline, ctx's values as a JSON array (CTX_FIELDS),
  // a newline, the payload as JSON
  // (JSON text as the host writes it holds no raw newline)
  // not writable: an agent's module runs after this and must not put its own in its place
  Object.defineProperty(globalThis, "__veil_invoke", { writable: false, configurable: false, value: function (input) {
    const i = input.indexOf("\n"), j = input.indexOf("\n", i + 1);
    const entry = input.slice(0, i);
    W = new Map(); EV = []; CTX = null; CTXS = input.slice(i + 1, j);
    const payload = P(input.slice(j + 1));
    const agent = globalThis.__veil_agent;
    const fn = agent[entry];
    if (typeof fn !== "function") {
      if (entry === "init") return '{"r":null,"w":[],"e":[]}';
      throw new Error("agent has no " + entry + "() entry point");
    }
    const r = fn(payload);
    if (r instanceof Promise) throw new TypeError("async entry points are not supported");
    const rs = r === undefined ? "null" : S(r);  // undefined for a function or a symbol
    if (typeof rs !== "string") throw new TypeError("the entry point returned a value that is not JSON");
    let w = "[";
    let first = true;
    for (const [k, v] of W) { w += (first ? "" : ",") + "[" + S(k) + "," + (v === null ? "null" : v) + "]"; first = false; }
    return '{"r":' + rs + ',"w":' + w + '],"e":[' + EV.join(",") + "]}";
  } });
})();
"""

PRELUDE: Final = _PRELUDE.replace(
    "__CTX_OBJECT__",
    "{ " + ", ".join(f"{name}: a[{i}]" for i, name in enumerate(CTX_FIELDS)) + " }",
)
