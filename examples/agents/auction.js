// Sealed-bid (second-price) auction: bids stay private in encrypted state until the close.
// Events reveal only that a bid happened; the close reveals the winner and the price paid.
export function init(args) {
  state.set("config", { seller: ctx.caller, ends_at: args.ends_at_block, reserve: args.reserve || 0 });
  state.set("closed", false);
}

export function handle(cmd) {
  const cfg = state.get("config");
  if (cmd.op === "bid") {
    if (state.get("closed") || ctx.block_number >= cfg.ends_at) throw new Error("bidding is over");
    if (!Number.isInteger(cmd.amount) || cmd.amount <= 0) throw new Error("bad amount");
    const isNew = state.get("bid:" + ctx.caller) === null;
    state.set("bid:" + ctx.caller, cmd.amount);
    emit({ type: "bid", bidder: ctx.caller, new: isNew });
    return true;
  }
  if (cmd.op === "close") {
    if (state.get("closed")) throw new Error("already closed");
    if (ctx.block_number < cfg.ends_at) throw new Error("too early");
    let best = null, bestAmount = 0, second = cfg.reserve;
    for (const key of state.keys("bid:")) {
      const amount = state.get(key);
      if (amount > bestAmount) { second = Math.max(second, bestAmount); best = key.slice(4); bestAmount = amount; }
      else if (amount > second) second = amount;
    }
    const result = best !== null && bestAmount >= cfg.reserve
      ? { winner: best, price: Math.max(second, cfg.reserve) }
      : { winner: null, price: 0 };
    state.set("closed", true);
    state.set("result", result);
    emit({ type: "closed", winner: result.winner, price: result.price });
    return result;
  }
  throw new Error("unknown op");
}

export function query(req) {
  if (req.op === "my_bid") return state.get("bid:" + ctx.caller);
  return { closed: state.get("closed"), bids: state.keys("bid:").length, result: state.get("result") };
}
