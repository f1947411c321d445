# Private key-value vault: only the owner and the readers/writers it grants may touch values.
# State is encrypted by the worker; this agent adds the access-control list.


def acl():
    return state.get("acl") or {"owner": None, "writers": [], "readers": []}


def can_write(a, who):
    return who == a["owner"] or who in a["writers"]


def can_read(a, who):
    return can_write(a, who) or who in a["readers"]


def init(args):
    state.set("acl", {"owner": ctx.caller, "writers": [], "readers": []})


def handle(cmd):
    a = acl()
    op = cmd.get("op")
    if op == "put":
        if not can_write(a, ctx.caller):
            raise PermissionError("not allowed")
        state.set("v:" + cmd["key"], cmd["value"])
        emit({"type": "put", "key": cmd["key"]})
        return True
    if op == "delete":
        if not can_write(a, ctx.caller):
            raise PermissionError("not allowed")
        state.delete("v:" + cmd["key"])
        emit({"type": "deleted", "key": cmd["key"]})
        return True
    if op == "grant" or op == "revoke":
        if ctx.caller != a["owner"]:
            raise PermissionError("only the owner may change access")
        role = "writer" if cmd.get("role") == "writer" else "reader"
        members = a["writers"] if role == "writer" else a["readers"]
        if op == "grant" and cmd["who"] not in members:
            members.append(cmd["who"])
        if op == "revoke" and cmd["who"] in members:
            members.remove(cmd["who"])
        state.set("acl", a)
        emit({"type": op, "role": role, "who": cmd["who"]})
        return True
    raise ValueError("unknown op")


def query(req):
    a = acl()
    if not can_read(a, ctx.caller):
        raise PermissionError("not allowed")
    if req.get("op") == "keys":
        return [k[2:] for k in state.keys("v:")]
    return state.get("v:" + req["key"])
