# Price oracle: reads a price over HTTPS from inside the enclave and feeds it to an EVM
# PriceFeed on a standing job. The API key is an owner-set secret: neither the chain nor the
# worker's operator ever sees it, and TLS ends in the enclave, so the operator cannot alter
# the price either. The owner must allow the API's host: veil agent egress allow ID HOST.
import json


def init(args):
    state.set("source", str((args or {}).get("source", "")))


def handle(cmd):
    op = cmd.get("op")
    if op == "source":
        state.set("source", str(cmd["url"]))
        return True
    if op == "subscribe":
        # the agent sets its own standing job: every N blocks, a fresh price to the feed
        jobs.schedule({"consumer": cmd["consumer"], "every": cmd.get("every", 10), "payload": None})
        return True
    if op == "unsubscribe":
        jobs.cancel(cmd["schedule_id"])
        return True
    raise ValueError("unknown op")


def fixed6(text):
    """'3141.59' -> 3141590000: six decimals, the PriceFeed's fixed point."""
    parts = str(text).split(".")
    whole = parts[0]
    fraction = parts[1] if len(parts) > 1 else ""
    if len(parts) > 2 or not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError("not a price: " + str(text))
    return int(whole) * 1000000 + int((fraction + "000000")[:6])


def price():
    answer = http.fetch(
        {"url": state.get("source"), "headers": {"x-api-key": secrets.get("api_key") or ""}}
    )
    if "error" in answer:
        raise ValueError("price source: " + answer["error"]["code"])
    if answer["status"] != 200:
        raise ValueError("price source answered " + str(answer["status"]))
    return fixed6(json.loads(answer["body"])["price"])


def job(request):
    return price()


def query(req):
    return {"price": price(), "decimals": 6, "block": ctx.block_number}
