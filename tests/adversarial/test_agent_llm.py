"""An agent's ``llm.chat`` against a hostile host, on real enclave processes and a real gateway on
the development TEE: the host carries every byte between the core and the gateway, and tries to
read the prompt, invent or replay an answer, swap in its own gateway or its own key."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from veilnet.crypto import SecretKey, sign_text
from veilnet.protocol import enclave as wire
from veilnet.protocol import envelopes as proto
from veilnet.protocol import gateway as gw
from veilnet.testing.adversary import EnclaveNetwork, dev_enclave_config
from veilnet.testing.gateway import GatewayHost, Tamper, dev_gateway

pytestmark = pytest.mark.slow  # the module starts enclave processes and a gateway

SEED = dev_enclave_config().dev_network_seed
PROMPT = "my-diagnosis-is-confidential"
AGENT = proto.pack_code(
    "js",
    b"""
export function query(req) {
  const reply = llm.chat({ messages: [{ role: "user", content: req.prompt }] });
  return { text: reply.text, receipt_id: reply.receipt_id, signer: reply.signing_address };
}
""",
)
OWNER = b"\x0c" * 20
WALLET = SecretKey.derive(b"\x71" * 32, "wallet")
_REQUEST_IDS = itertools.count(1)


@dataclass
class Setup:
    net: EnclaveNetwork
    contract: bytes
    url: str


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    assert SEED is not None
    with dev_gateway(SEED) as url, EnclaveNetwork(io_kinds=(wire.IO_LLM_CHAT,)) as net:
        cluster = net.bootstrap(workers=("w1",))
        contract = net.ledger.deploy_contract(
            sender=OWNER, salt=b"\x01" * 32, cluster_id=cluster, code=AGENT
        )
        net.settle()
        yield Setup(net, contract, url)


def _io(host: GatewayHost) -> Any:
    """The worker host's side of ``IO_GATEWAY``, around ``host``."""

    def carry(kind: str, body: bytes) -> bytes:
        assert kind == wire.IO_GATEWAY, kind
        call = wire.GatewayCall.from_bytes(body)
        status, answer = host(call.method, call.path, call.body)
        return wire.GatewayReply(status=status, body=answer).to_bytes()

    return carry


def _ask(setup: Setup, host: GatewayHost, prompt: str = PROMPT) -> dict[str, Any]:
    net = setup.net
    request_id = next(_REQUEST_IDS).to_bytes(32, "big")
    body = json.dumps({"prompt": prompt}).encode()
    query, session = net.seal_query(
        "w1", setup.contract, body, wallet=WALLET, request_id=request_id
    )
    raw = net.hosts["w1"].enclave.query(query, _io(host))
    answer: dict[str, Any] = net.open_answer(raw, session, request_id)
    return answer


def _refused(answer: dict[str, Any], reason: str) -> None:
    assert answer["ok"] is False, answer
    message = answer["error"]["message"]
    assert "runtime_llm_failed" in message and reason in message, message


def _forget(setup: Setup) -> None:
    """A fresh gateway check on the next chat: an honest round trip after a refused one."""
    assert _ask(setup, GatewayHost(setup.url))["ok"] is True


def test_the_host_carries_neither_prompt_nor_answer(setup: Setup) -> None:
    host = GatewayHost(setup.url)
    answer = _ask(setup, host)
    assert answer["ok"] is True, answer
    result = answer["result"]
    assert result["text"] == f"echo: {PROMPT}"
    carried = bytes(host.sent) + bytes(host.received)
    assert PROMPT.encode() not in carried and b"echo:" not in carried
    assert [path for _, path in host.calls][-1] == gw.SEALED_CHAT_PATH


def test_an_answer_the_host_invents_is_refused(setup: Setup) -> None:
    """The host answers the sealed chat itself, in the clear (it cannot seal to the core's reply
    key, which travels inside the sealed request): refused, nothing reaches the agent."""
    forged = json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": "forged"}}]}
    ).encode()

    def invent(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        return (200, forged) if path == gw.SEALED_CHAT_PATH else (status, body)

    _refused(_ask(setup, GatewayHost(setup.url, tamper=invent)), "sealed")
    _forget(setup)


def test_an_old_answer_replayed_is_refused(setup: Setup) -> None:
    """The host keeps a real sealed answer and hands it back for the same prompt later: it was
    sealed to the earlier chat's one-time reply key, so it does not open."""
    first = GatewayHost(setup.url)
    assert _ask(setup, first)["ok"] is True
    kept: dict[str, bytes] = {}

    def record(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == gw.SEALED_CHAT_PATH:
            kept.setdefault("reply", body)
        return status, body

    assert _ask(setup, GatewayHost(setup.url, tamper=record))["ok"] is True

    def replay(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        return (200, kept["reply"]) if path == gw.SEALED_CHAT_PATH else (status, body)

    _refused(_ask(setup, GatewayHost(setup.url, tamper=replay)), "sealed")
    _forget(setup)


def _report_tamper(change: Any) -> Tamper:
    def tamper(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path.startswith(gw.ATTESTATION_PATH):
            report = json.loads(body)
            change(report)
            return status, json.dumps(report).encode()
        return status, body

    return tamper


def test_a_key_of_the_hosts_own_is_refused_before_the_prompt_leaves(setup: Setup) -> None:
    """The host swaps the gateway's encryption key in the report for one it holds, signing it
    with a key of its own: the attested signing key does not vouch for it, and no chat is sent."""
    mine = SecretKey.derive(b"\x66" * 32, "host")

    def swap(report: dict[str, Any]) -> None:
        report["encryption_key"] = mine.public.x25519.hex()
        report["encryption_key_signature"] = (
            "0x" + sign_text(mine, gw.encryption_key_text(mine.public.x25519)).hex()
        )

    _forget_trust(setup)
    host = GatewayHost(setup.url, tamper=_report_tamper(swap))
    _refused(_ask(setup, host), "not vouched")
    assert all(path != gw.SEALED_CHAT_PATH for _, path in host.calls)
    _forget(setup)


def test_an_impostor_gateway_is_refused(setup: Setup) -> None:
    """The host sends the core to a gateway of its own: another dev TEE (not the network's
    root), then the right TEE but a report whose quote binds another nonce."""
    _forget_trust(setup)
    with dev_gateway(b"a-host-run-gateway-on-its-own-tee!!!") as other:
        host = GatewayHost(other)
        _refused(_ask(setup, host), "quote")
        assert all(path != gw.SEALED_CHAT_PATH for _, path in host.calls)
    stale: dict[str, Any] = {}
    honest = GatewayHost(setup.url)
    honest("GET", f"{gw.ATTESTATION_PATH}?nonce={'00' * 32}", b"")
    stale.update(json.loads(bytes(honest.received)))
    _forget_trust(setup)
    _refused(
        _ask(setup, GatewayHost(setup.url, tamper=_report_tamper(lambda r: r.update(stale)))),
        "quote",
    )
    _forget(setup)


def _forget_trust(setup: Setup) -> None:
    """Make the core ask for a report again: an answer that fails its checks forgets the
    verified gateway (what a host can always cause)."""

    def garble(method: str, path: str, status: int, body: bytes) -> tuple[int, bytes]:
        return (200, b"garbage") if path == gw.SEALED_CHAT_PATH else (status, body)

    _ask(setup, GatewayHost(setup.url, tamper=garble))
