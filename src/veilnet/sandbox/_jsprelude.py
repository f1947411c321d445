"""The trusted JavaScript prelude evaluated in every QuickJS guest before the agent module.
It builds the host API (state overlay, ctx, emit, call, ...) over one raw host function."""

# ruff: noqa: E501  (JavaScript source below)
from typing import Final

PRELUDE: Final = r"""
"use strict";
(function () {
  const H = globalThis.__veil_host;
  delete globalThis.__veil_host;
  const P = JSON.parse, S = JSON.stringify;
  let W = new Map(), EV = [], CTX = null;
  class VeilError extends Error {
    constructor(e) { super(e.code + ": " + e.message); this.name = "VeilError"; this.code = e.code; this.details = e.details; }
  }
  function host(op, args) {
    const r = P(H(S([op, args])));
    if (r[0] !== 0) throw new VeilError(r[1]);
    return r[1];
  }
  function key(k) {
    if (typeof k !== "string" || k.length === 0) throw new TypeError("state keys must be non-empty strings");
    return k;
  }
  const state = Object.freeze({
    get(k) { key(k); if (W.has(k)) { const v = W.get(k); return v === null ? null : P(v); } return host("state.get", [k]); },
    set(k, v) { key(k); if (v === undefined || v === null) throw new TypeError("state.set needs a value; use state.delete"); W.set(k, S(v)); },
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
    emit(event) { EV.push(P(S(event === undefined ? null : event))); },
    call(contractId, msg) { return host("call", [String(contractId), msg === undefined ? null : msg]); },
    derive_key(salt) { return host("derive_key", [String(salt)]); },
    sign(payload) { return host("sign", [payload === undefined ? null : payload]); },
    fetch(request) { return host("http.fetch", [request]); },
  };
  for (const name of Object.keys(defs)) {
    Object.defineProperty(globalThis, name, { value: defs[name], writable: false, configurable: false });
  }
  Object.defineProperty(globalThis, "ctx", { get() { return CTX; }, configurable: false });
  Math.random = random;
  globalThis.__veil_invoke = function (input) {
    const inp = P(input);
    W = new Map(); EV = []; CTX = Object.freeze(inp.ctx);
    const agent = globalThis.__veil_agent;
    const fn = agent[inp.entry];
    if (typeof fn !== "function") {
      if (inp.entry === "init") return '{"r":null,"w":[],"e":[]}';
      throw new Error("agent has no " + inp.entry + "() entry point");
    }
    const r = fn(inp.payload);
    if (r instanceof Promise) throw new TypeError("async entry points are not supported");
    let w = "[";
    let first = true;
    for (const [k, v] of W) { w += (first ? "" : ",") + "[" + S(k) + "," + (v === null ? "null" : v) + "]"; first = false; }
    return '{"r":' + (r === undefined ? "null" : S(r)) + ',"w":' + w + '],"e":' + S(EV) + "}";
  };
})();
"""
