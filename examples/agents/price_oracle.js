// Price oracle: reads a price over HTTPS from inside the enclave and feeds it to an EVM
// PriceFeed on a standing job. The API key is an owner-set secret: neither the chain nor the
// worker's operator ever sees it, and TLS ends in the enclave, so the operator cannot alter
// the price either. The owner must allow the API's host: veil agent egress allow ID HOST.
export function init(args) {
  state.set("source", String((args && args.source) || ""));
}

export function handle(cmd) {
  if (cmd.op === "source") {
    state.set("source", String(cmd.url));
    return true;
  }
  if (cmd.op === "subscribe") {
    // the agent sets its own standing job: every N blocks, a fresh price to the feed
    jobs.schedule({ consumer: cmd.consumer, every: cmd.every || 10, payload: null });
    return true;
  }
  if (cmd.op === "unsubscribe") {
    jobs.cancel(cmd.schedule_id);
    return true;
  }
  throw new Error("unknown op");
}

// "3141.59" -> 3141590000: six decimals, the PriceFeed's fixed point
function fixed6(text) {
  const [whole, fraction = ""] = String(text).split(".");
  if (!/^\d+$/.test(whole) || !/^\d*$/.test(fraction)) throw new Error("not a price: " + text);
  return Number(whole) * 1000000 + Number((fraction + "000000").slice(0, 6));
}

function price() {
  const answer = http.fetch({
    url: state.get("source"),
    headers: { "x-api-key": secrets.get("api_key") || "" },
  });
  if (answer.error) throw new Error("price source: " + answer.error.code);
  if (answer.status !== 200) throw new Error("price source answered " + answer.status);
  return fixed6(JSON.parse(answer.body).price);
}

export function job(request) {
  return price();
}

export function query(req) {
  return { price: price(), decimals: 6, block: ctx.block_number };
}
