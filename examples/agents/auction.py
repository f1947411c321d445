# Sealed-bid (second-price) auction: bids stay private in encrypted state until the close.
# Events reveal only that a bid happened; the close reveals the winner and the price paid.


def init(args):
    state.set(
        "config",
        {"seller": ctx.caller, "ends_at": args["ends_at_block"], "reserve": args.get("reserve", 0)},
    )
    state.set("closed", False)


def handle(cmd):
    cfg = state.get("config")
    op = cmd.get("op")
    if op == "bid":
        if state.get("closed") or ctx.block_number >= cfg["ends_at"]:
            raise ValueError("bidding is over")
        amount = cmd.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ValueError("bad amount")
        is_new = state.get("bid:" + ctx.caller) is None
        state.set("bid:" + ctx.caller, amount)
        emit({"type": "bid", "bidder": ctx.caller, "new": is_new})
        return True
    if op == "close":
        if state.get("closed"):
            raise ValueError("already closed")
        if ctx.block_number < cfg["ends_at"]:
            raise ValueError("too early")
        best = None
        best_amount = 0
        second = cfg["reserve"]
        for key in state.keys("bid:"):
            amount = state.get(key)
            if amount > best_amount:
                second = max(second, best_amount)
                best = key[4:]
                best_amount = amount
            elif amount > second:
                second = amount
        if best is not None and best_amount >= cfg["reserve"]:
            result = {"winner": best, "price": max(second, cfg["reserve"])}
        else:
            result = {"winner": None, "price": 0}
        state.set("closed", True)
        state.set("result", result)
        emit({"type": "closed", "winner": result["winner"], "price": result["price"]})
        return result
    raise ValueError("unknown op")


def query(req):
    if req.get("op") == "my_bid":
        return state.get("bid:" + ctx.caller)
    return {"closed": state.get("closed"), "bids": len(state.keys("bid:")), "result": state.get("result")}
