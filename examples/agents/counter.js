// Counter agent: the smallest useful contract. Commands change the count; queries read it;
// EVM contracts get it as a job result (VeilConsumer).
export function init(args) {
  state.set("count", (args && args.start) || 0);
}

export function handle(cmd) {
  const by = cmd.by === undefined ? 1 : cmd.by;
  if (!Number.isInteger(by)) throw new TypeError("by must be an integer");
  const count = (state.get("count") || 0) + by;
  state.set("count", count);
  emit({ type: "counted", count: count, by: by, caller: ctx.caller });
  return count;
}

export function query(req) {
  return { count: state.get("count") || 0, block: ctx.block_number };
}

export function job(request) {
  return { count: state.get("count") || 0, asked: request.payload };
}
