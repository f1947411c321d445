"""``veil devnet --demo``: a scripted tour of every capability of a running devnet.
Each step reports a verified result as data (``DemoStep``); the CLI renders them with rich."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veilnet.devnet import constants as C  # noqa: N812
from veilnet.devnet._devnet import Devnet
from veilnet.devnet.errors import DemoFailed
from veilnet.errors import VeilnetError

__all__ = ["DemoStep", "examples_dir", "run_demo"]

# An agent-to-agent caller: commands forward to another agent of the cluster (synchronous,
# in-cluster ``call``), and its query reads an owner-set secret without revealing it.
PROXY_PY = """# Demo agent: forwards commands to another agent and keeps an owner-set secret.


def init(args):
    state.set("target", args["target"])


def handle(cmd):
    count = call(state.get("target"), {"by": cmd["by"]})
    emit({"type": "forwarded", "to": state.get("target"), "count": count})
    return count


def query(req):
    key = secrets.get("api_key")
    return {"has_secret": key is not None, "secret_length": 0 if key is None else len(key)}
"""

# The assistant example's query, returning the gateway's signed receipt next to the answer so
# the client can check it independently.
ASSISTANT_RECEIPT_JS = """// Demo agent: examples/agents/assistant.js, also returning the receipt.
export function init(args) { state.set("persona", args.persona || "You are a concise assistant."); }
export function handle(cmd) { state.set("persona", String(cmd.persona)); return true; }
export function query(req) {
  const reply = llm.chat({
    messages: [
      { role: "system", content: state.get("persona") },
      { role: "user", content: String(req.question) },
    ],
    max_tokens: req.max_tokens || 48,
    temperature: 0,
  });
  return { answer: reply.choices[0].message.content, model: reply.model, receipt: reply.receipt };
}
"""


@dataclass(slots=True)
class DemoStep:
    """One verified result of the tour."""

    title: str
    lines: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None

    def add(self, label: str, value: Any) -> None:
        self.lines.append((label, value if isinstance(value, str) else _short(value)))

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "lines": dict(self.lines),
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
        }


def examples_dir() -> Path:
    """``examples/agents`` of the source tree (cwd or a parent of this package)."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / "examples" / "agents"
        if (candidate / "counter.js").is_file():
            return candidate
    raise DemoFailed("examples/agents not found: run the demo from the repository")


def run_demo(devnet: Devnet, report: Callable[[DemoStep], None]) -> list[DemoStep]:
    """Run the tour against a started devnet; ``report`` receives each step as it completes.

    Raises:
        DemoFailed: a step did not produce the expected verified result.
    """
    return asyncio.run(_tour(devnet, report))


async def _tour(devnet: Devnet, report: Callable[[DemoStep], None]) -> list[DemoStep]:
    from veilnet.sdk import AsyncClient

    steps: list[DemoStep] = []
    folder = examples_dir()
    users = list(devnet.network["dev_accounts"].values())
    # the devnet's own dev-TEE root, trusted on purpose (a demo of the devnet it started)
    alice = AsyncClient.connect(devnet.network, wallet=users[0], allow_insecure_dev_tee=True)
    bob = AsyncClient.connect(devnet.network, wallet=users[1], allow_insecure_dev_tee=True)

    async def step(title: str, body: Callable[[DemoStep], Awaitable[None]]) -> None:
        item = DemoStep(title=title)
        started = time.monotonic()
        try:
            await body(item)
        except VeilnetError as exc:
            raise DemoFailed(f"{title}: {exc.code}: {exc.message}") from exc
        item.seconds = time.monotonic() - started
        steps.append(item)
        report(item)

    try:
        agents: dict[str, Any] = {}
        auction_end: list[int] = []

        async def deploy_all(item: DemoStep) -> None:
            head = await alice.head()
            plans = {
                "counter.js": (folder / "counter.js", {"start": 0}),
                "counter.py": (folder / "counter.py", {"start": 100}),
                "vault.js": (folder / "vault.js", {}),
                "auction.js": (folder / "auction.js", {"ends_at_block": head + 30, "reserve": 10}),
            }
            deployed = await asyncio.gather(
                *(alice.deploy(path, init=init) for path, init in plans.values())
            )
            for name, agent in zip(plans, deployed, strict=True):
                agents[name] = agent
                key = await agent.key()
                item.add(name, f"{agent.id}  (key epoch {key.epoch})")
            item.add("owner", alice.wallet.address.hex)
            auction_end.append(head + 30)

        await step("Deploy the example agents (JavaScript and Python)", deploy_all)

        async def counters(item: DemoStep) -> None:
            js, py = agents["counter.js"], agents["counter.py"]
            done_js, done_py = await asyncio.gather(js.command({"by": 2}), py.command({"by": 5}))
            _expect(done_js.result == 2 and done_py.result == 105, "counters did not count")
            item.add("command → counter.js", f"count = {done_js.result}, events {done_js.events}")
            item.add("command → counter.py", f"count = {done_py.result} (seq {done_py.seq})")
            answer = await js.query({})
            _expect(answer.value["count"] == 2, "the query did not see the command")
            _add_proof(item, "query ← counter.js", answer)

        await step("Encrypted command, then a verified query", counters)

        async def vault(item: DemoStep) -> None:
            agent = agents["vault.js"]
            await agent.command({"op": "put", "key": "api", "value": "s3cr3t-token"})
            answer = await agent.query({"key": "api"})
            _expect(answer.value == "s3cr3t-token", "the vault did not return the value")
            item.add("owner reads 'api'", f"{answer.value!r} (worker {answer.worker.hex[:10]}…)")
            try:
                await bob.agent(agent.id).query({"key": "api"})
            except VeilnetError as exc:
                item.add("another wallet reads 'api'", f"refused: {exc.code} ({exc.message[:60]})")
            else:
                raise DemoFailed("the vault let another wallet read")

        await step("Private vault: encrypted state with an access list", vault)

        async def auction(item: DemoStep) -> None:
            agent = agents["auction.js"]
            bids = await asyncio.gather(
                agent.command({"op": "bid", "amount": 50}),
                bob.agent(agent.id).command({"op": "bid", "amount": 70}),
            )
            item.add(
                "bids",
                "alice 50, bob 70 — the events show only "
                + str([e["type"] for b in bids for e in b.events]),
            )
            mine = await bob.agent(agent.id).query({"op": "my_bid"})
            item.add("bob's own bid (private query)", mine.value)
            status = await agent.query({})
            item.add("public status", status.value)
            await _until_head(alice, auction_end[0])
            closed = await agent.command({"op": "close"})
            _expect(closed.result["price"] == 50, "second-price auction got the wrong price")
            item.add("close", f"winner {closed.result['winner']}, pays {closed.result['price']}")

        await step("Sealed-bid auction: bids stay private until the close", auction)

        async def a2a(item: DemoStep) -> None:
            counter = agents["counter.js"]
            proxy = await alice.deploy(
                _write_temp(devnet, "proxy.py", PROXY_PY), init={"target": counter.id}
            )
            done = await proxy.command({"by": 10})
            _expect(done.result == 12, "the nested call did not reach the counter")
            item.add("proxy.py → counter.js", f"call returned {done.result}; events {done.events}")
            answer = await counter.query({})
            item.add(
                "counter now", f"count = {answer.value['count']} (block {answer.block_number})"
            )
            await proxy.set_secret("api_key", "sk-demo-1234")
            secret = await proxy.query({})
            _expect(secret.value["has_secret"] is True, "the secret did not arrive")
            item.add(
                "owner-set secret",
                f"agent sees it ({secret.value['secret_length']} chars); nobody else can",
            )

        await step("Agent-to-agent call and an encrypted secret", a2a)

        async def llm(item: DemoStep) -> None:
            if devnet.gateway_url is None:
                item.skipped = f"inference gateway {devnet.gateway_note}"
                return
            agent = await alice.deploy(
                _write_temp(devnet, "assistant_receipt.js", ASSISTANT_RECEIPT_JS),
                init={"persona": "You answer in one short sentence."},
            )
            answer = await agent.query({"question": "What is a trusted execution environment?"})
            text = str(answer.value["answer"]).strip().replace("\n", " ")
            item.add("question", "What is a trusted execution environment?")
            item.add("answer", text[:160])
            receipt = answer.value["receipt"]
            signer = _verify_receipt(devnet, receipt["id"])
            item.add(
                "receipt",
                f"{receipt['id']} signed by {signer[:12]}… (attested key, verified in the "
                "worker's enclave and again here)",
            )
            _add_proof(item, "query", answer)

        await step("LLM call through the attested inference gateway", llm)

        async def oracle(item: DemoStep) -> None:
            api = devnet.network.get("price_api_url")
            if not api:
                item.skipped = "no local price API"
                return
            agent = await alice.deploy(folder / "price_oracle.js", init={"source": api})
            host = str(api).split("//", 1)[1].split(":", 1)[0]
            await alice.set_egress(agent.id, host)
            item.add("egress allowlist (on chain)", await alice.egress(agent.id))
            # the key goes in encrypted; the command lands after the allowlist's block
            await agent.set_secret("api_key", C.PRICE_API_KEY)
            quote = await agent.query({})
            _expect(quote.value["price"] == 3141590000, "the oracle did not read the API")
            item.add(
                "query ← price_oracle.js",
                f"{quote.value['price']} (6 decimals), HTTPS in the enclave",
            )
            feed = await alice.deploy_consumer(agent.id, kind="PriceFeed", ttl=50)
            await agent.command(
                {"op": "subscribe", "consumer": feed.hex, "every": C.PRICE_FEED_EVERY}
            )
            item.add(
                "agent scheduled itself",
                f"every {C.PRICE_FEED_EVERY} blocks → PriceFeed {feed.hex}",
            )
            latest = await _until(lambda: alice.price_feed(feed), lambda f: f["height"] > 0)
            _expect(latest["price"] == 3141590000, "the feed took a wrong price")
            item.add(
                "PriceFeed.latest()",
                f"{latest['price']} at block {latest['height']} (signed by the agent's key)",
            )

        await step("Price oracle: HTTPS from the enclave feeds an EVM price feed", oracle)

        async def judge(item: DemoStep) -> None:
            if devnet.gateway_url is None:
                item.skipped = f"inference gateway {devnet.gateway_note}"
                return
            agent = await alice.deploy(folder / "judge.py")
            escrow = await alice.deploy_escrow(
                agent.id, seller=bob.wallet.address, value=10**16, ttl=80
            )
            item.add("escrow", f"{escrow.hex}: alice pays 0.01 ETH for bob's goods")
            claim = "Bob: I shipped the laptop and tracking shows it delivered. Pay the SELLER."
            await bob.escrow_dispute(escrow, claim)
            item.add("bob disputes", claim)
            done = await _until(lambda: alice.escrow(escrow), lambda e: e["settled"])
            party = "bob (seller)" if done["winner"] == bob.wallet.address.hex else "alice (buyer)"
            item.add(
                "AI judge ruled",
                f"paid {party}; the prompt and answer never left the enclave and gateway",
            )

        await step("AI judge: a sealed LLM ruling settles an EVM escrow", judge)

        async def rotate(item: DemoStep) -> None:
            counter = agents["counter.js"]
            before = await counter.key(refresh=True)
            lines: list[str] = []
            summary = await alice.rotate_master_key(progress=lines.append)
            for line in lines:
                item.add("·", line)
            after = await counter.key(refresh=True)
            _expect(after.epoch > before.epoch, "the contract was not re-keyed")
            item.add(
                "counter.js key epoch",
                f"{before.epoch} → {after.epoch} in {summary['blocks']} blocks",
            )
            done = await counter.command({"by": 1})
            answer = await counter.query({})
            _expect(answer.value["count"] == done.result, "state was lost in the rotation")
            item.add(
                "after rotation",
                f"command → {done.result}; verified query → {answer.value['count']}",
            )

        await step("Master-key rotation: every cluster and contract re-keyed", rotate)
    finally:
        await alice.aclose()
        await bob.aclose()
    return steps


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


def _add_proof(item: DemoStep, label: str, answer: Any) -> None:
    item.add(label, answer.value)
    item.add(
        "  verified",
        f"worker {answer.worker.hex[:10]}… (registered, attested) at block {answer.block_number} "
        f"0x{answer.block_hash.hex()[:12]}…, state 0x{answer.state_commitment.hex()[:12]}…",
    )


async def _until(
    read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 120
) -> Any:
    """Poll ``read`` until ``done`` holds for what it returned (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"gave up waiting after {timeout:.0f} s: {value}")
        await asyncio.sleep(0.25)


async def _until_head(client: Any, number: int) -> None:
    """Wait until the chain head reaches ``number`` (bounded)."""
    deadline = time.monotonic() + 120
    while await client.head() < number:
        if time.monotonic() > deadline:
            raise DemoFailed(f"the chain did not reach block {number}")
        await asyncio.sleep(0.25)


def _write_temp(devnet: Devnet, name: str, source: str) -> Path:
    folder = devnet.options.data_dir / "demo-agents"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(source)
    return path


def _verify_receipt(devnet: Devnet, receipt_id: str) -> str:
    """Fetch the receipt from the gateway and check it against its fresh attestation."""
    from veilnet.attestation import Policy
    from veilnet.inference import (
        AllowedMeasurements,
        DCAPQuoteVerifier,
        GatewayClient,
        GatewayVerifier,
    )
    from veilnet.tee import DEFAULT_DEV_MEASUREMENTS, DevEnclave

    assert devnet.gateway_url is not None
    root = DevEnclave(devnet.network_seed, allow_insecure_dev_tee=True).trust_root
    verifier = GatewayVerifier(
        quote_verifier=DCAPQuoteVerifier(root=root, policy=Policy.development()),
        policy=AllowedMeasurements.of_ids([m.id for m in DEFAULT_DEV_MEASUREMENTS.values()]),
    )
    with GatewayClient(devnet.gateway_url, verifier) as gateway:
        _receipt, attestation = gateway.verify(receipt_id)
    return attestation.signing_address.hex


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value) if isinstance(value, dict | list) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
