// Private key-value vault: only the owner and the readers/writers it grants may touch values.
// State is encrypted by the worker; this agent adds the access-control list.
function acl() { return state.get("acl") || { owner: null, writers: [], readers: [] }; }
function canWrite(a, who) { return who === a.owner || a.writers.includes(who); }
function canRead(a, who) { return canWrite(a, who) || a.readers.includes(who); }

export function init(args) {
  state.set("acl", { owner: ctx.caller, writers: [], readers: [] });
}

export function handle(cmd) {
  const a = acl();
  if (cmd.op === "put") {
    if (!canWrite(a, ctx.caller)) throw new Error("not allowed");
    state.set("v:" + cmd.key, cmd.value);
    emit({ type: "put", key: cmd.key });
    return true;
  }
  if (cmd.op === "delete") {
    if (!canWrite(a, ctx.caller)) throw new Error("not allowed");
    state.delete("v:" + cmd.key);
    emit({ type: "deleted", key: cmd.key });
    return true;
  }
  if (cmd.op === "grant" || cmd.op === "revoke") {
    if (ctx.caller !== a.owner) throw new Error("only the owner may change access");
    const list = cmd.role === "writer" ? a.writers : a.readers;
    const i = list.indexOf(cmd.who);
    if (cmd.op === "grant" && i < 0) list.push(cmd.who);
    if (cmd.op === "revoke" && i >= 0) list.splice(i, 1);
    state.set("acl", a);
    emit({ type: cmd.op, role: cmd.role === "writer" ? "writer" : "reader", who: cmd.who });
    return true;
  }
  throw new Error("unknown op");
}

export function query(req) {
  const a = acl();
  if (!canRead(a, ctx.caller)) throw new Error("not allowed");
  if (req.op === "keys") return state.keys("v:").map((k) => k.slice(2));
  return state.get("v:" + req.key);
}
