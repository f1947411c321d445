# Counter agent: the smallest useful contract. Commands change the count; queries read it;
# EVM contracts get it as a job result (VeilConsumer).


def init(args):
    state.set("count", (args or {}).get("start", 0))


def handle(cmd):
    by = cmd.get("by", 1)
    if not isinstance(by, int) or isinstance(by, bool):
        raise TypeError("by must be an integer")
    count = (state.get("count") or 0) + by
    state.set("count", count)
    emit({"type": "counted", "count": count, "by": by, "caller": ctx.caller})
    return count


def query(req):
    return {"count": state.get("count") or 0, "block": ctx.block_number}


def job(request):
    return {"count": state.get("count") or 0, "asked": request["payload"]}
