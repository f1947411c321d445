"""Collateral a gatekeeper's core fetches itself from the network's PCCS, over TLS that ends in
the core, and posts on chain so that every core judges a registration under the same bytes.

Theory of operation
-------------------
Without a PCCS in the network's configuration, a quote is judged under the collateral its
registrant posted (``registry.on_collateral``): genuine, since Intel's keys sign it, but the
registrant picks which genuine copy, and an older one may still rate its TCB better than today's.
With one (``CoreConfig.pccs_url``), the registrant's copy is kept for audits only:

1. A gatekeeper's core sees a registration (or re-attestation) waiting to be judged and tells its
   host (``Applied.collateral_wanted``).
2. The host calls ``fetch``: the core asks the PCCS for the quote's PCK CRL, TCB info (by the
   quote's FMSPC), QE identity and root CA CRL, four HTTPS GETs whose TLS ends in the core (the
   host relays records it can neither read nor forge), and keeps the assembled collateral.
3. At the next block the core posts it from its identity (``TOPIC_PCCS_COLLATERAL``); the first
   such post from a gatekeeper that lands is what every core judges that quote under.

Fetching is I/O outside block application, so which block carries the post depends on timing.
That touches only the gatekeeper's own egress numbering, which no other replica shares; a core
that replays from genesis without the fetch realigns that numbering from its own posts it sees
land (``dispatch``).
"""

from __future__ import annotations

import json
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import Final

import dcap_qvl

from veilnet.attestation import Collateral
from veilnet.codec import CodecError, abi_decode, abi_encode
from veilnet.crypto import keccak
from veilnet.errors import Unavailable, VeilnetError
from veilnet.protocol import events as ev
from veilnet.protocol import limits, topics
from veilnet.runtime.context import CoreContext
from veilnet.runtime.records import WorkerStanding
from veilnet.runtime.tls import HTTPSExchange, Relay, TLSFailed, client_context, exchange

MAX_FETCHES_PER_CALL: Final = 4
"""Registrations one ``fetch`` works through (four requests each): bounded work per call."""
MAX_ANSWER_BYTES: Final = 256 * 1024
"""The most one PCCS answer may be (a TCB info with many levels is tens of KiB)."""

_PENDING: Final = (WorkerStanding.PENDING, WorkerStanding.REATTESTING)


def enabled(core: CoreContext) -> bool:
    return bool(core.config.pccs_url)


def for_judging(core: CoreContext, quote_hash: bytes, registrant_hash: bytes) -> bytes | None:
    """The collateral a quote is judged under: the PCCS's as a gatekeeper posted it where the
    network names a PCCS, else the registrant's; None until it is on chain."""
    state = core.state
    if enabled(core):
        posted = state.pccs_for.get(quote_hash)
        return None if posted is None else state.collaterals.get(posted)
    return state.collaterals.get(registrant_hash)


def judged(core: CoreContext, quote_hash: bytes) -> None:
    """A quote was judged: its PCCS collateral is not needed again (a re-attestation brings
    another quote)."""
    core.state.pccs_for.pop(quote_hash, None)
    core.state.pccs_sent.discard(quote_hash)


# ---- the gatekeeper's fetch (outside block application) ---------------------------------


def wanted(core: CoreContext) -> list[tuple[bytes, bytes]]:
    """(quote hash, quote) of the registrations this gatekeeper should fetch collateral for, in
    registration order: waiting to be judged, no PCCS collateral on chain, none posted or held."""
    state = core.state
    if not enabled(core) or not core.is_gatekeeper() or state.master is None:
        return []
    out = []
    for worker in state.workers.values():
        quote_hash = worker.quote_hash
        if worker.standing not in _PENDING or quote_hash in state.pccs_for:
            continue
        if quote_hash in state.pccs_sent or quote_hash in core.pccs_cache:
            continue
        out.append((quote_hash, worker.quote))
    return out


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    port: int
    prefix: str


def _endpoint(url: str) -> _Endpoint:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("the PCCS URL must be https://HOST[:PORT][/PATH]")
    return _Endpoint(parts.hostname, parts.port or 443, parts.path.rstrip("/"))


def requests_for(quote: bytes) -> dict[str, str]:
    """The four PCCS v4 request targets for ``quote``, by what each fetches.

    Raises:
        ValueError: the quote does not parse or names no FMSPC / CA.
    """
    parsed = dcap_qvl.Quote.parse(quote)
    kind = "tdx" if parsed.is_tdx() else "sgx"
    fmspc, ca = parsed.fmspc(), parsed.ca()
    return {
        "pckcrl": f"/sgx/certification/v4/pckcrl?ca={ca}&encoding=der",
        "tcb": f"/{kind}/certification/v4/tcb?fmspc={fmspc}&update=standard",
        "qe": f"/{kind}/certification/v4/qe/identity?update=standard",
        "rootcacrl": "/sgx/certification/v4/rootcacrl",
    }


def fetch(core: CoreContext, relay: Relay) -> tuple[dict[bytes, bytes], list[str]]:
    """Fetch the collateral of up to ``MAX_FETCHES_PER_CALL`` wanted registrations; changes
    nothing in the core (``keep`` does, under the caller's lock). Returns ({quote hash:
    collateral JSON}, reasons of the ones that failed)."""
    found: dict[bytes, bytes] = {}
    reasons: list[str] = []
    todo = wanted(core)[:MAX_FETCHES_PER_CALL]
    if not todo:
        return found, reasons
    endpoint = _endpoint(core.config.pccs_url)
    context = client_context(core.config.pccs_roots)
    head = core.state.head
    at = core.config.chain_trust.anchor_timestamp if head is None else head.timestamp
    conn = 0
    for quote_hash, quote in todo:
        try:
            answers = {}
            for name, target in requests_for(quote).items():
                ex = HTTPSExchange(
                    context,
                    host=endpoint.host,
                    port=endpoint.port,
                    method="GET",
                    target=endpoint.prefix + target,
                    body=b"",
                    at=at,
                    max_response_bytes=MAX_ANSWER_BYTES,
                )
                response = exchange(ex, relay, conn=conn)
                conn += 1
                if response.status != 200:
                    raise _Failed(f"http_status:{response.status}")
                answers[name] = (dict(response.headers), response.body)
            found[quote_hash] = assemble(answers).to_json()
        except TLSFailed as exc:
            reasons.append(f"tls_failed:{exc.details.get('stage', 'unknown')}")
        except Unavailable:
            reasons.append("unavailable")
        except _Failed as exc:
            reasons.append(exc.reason)
        except (VeilnetError, ValueError):
            reasons.append("collateral_invalid")
    return found, reasons


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def assemble(answers: dict[str, tuple[dict[bytes, bytes], bytes]]) -> Collateral:
    """A ``Collateral`` from the four PCCS answers (headers, body), as the v4 API serves them:
    issuer chains URL-encoded in headers, the signed JSON kept byte for byte.

    Raises:
        CollateralInvalid, ValueError, KeyError: an answer is not what the API serves.
    """
    crl_headers, pck_crl = answers["pckcrl"]
    tcb_headers, tcb_body = answers["tcb"]
    qe_headers, qe_body = answers["qe"]
    _, root_body = answers["rootcacrl"]
    tcb = _members(tcb_body.decode("utf-8"))
    qe = _members(qe_body.decode("utf-8"))
    return Collateral.from_fields(
        pck_crl_issuer_chain=_header(crl_headers, b"sgx-pck-crl-issuer-chain"),
        pck_crl=_crl_hex(pck_crl),
        tcb_info_issuer_chain=_header(
            tcb_headers, b"tcb-info-issuer-chain", b"sgx-tcb-info-issuer-chain"
        ),
        tcb_info=tcb["tcbInfo"],
        tcb_info_signature=json.loads(tcb["signature"]),
        qe_identity_issuer_chain=_header(
            qe_headers, b"sgx-enclave-identity-issuer-chain", b"enclave-identity-issuer-chain"
        ),
        qe_identity=qe["enclaveIdentity"],
        qe_identity_signature=json.loads(qe["signature"]),
        root_ca_crl=_crl_hex(root_body),
    )


def _header(headers: dict[bytes, bytes], *names: bytes) -> str:
    for name in names:
        if name in headers:
            return urllib.parse.unquote(headers[name].decode("ascii"))
    raise ValueError(f"no {names[0].decode()} header")


def _crl_hex(body: bytes) -> str:
    """A CRL as hex: served as DER, or as the hex text a PCCS answers for the root CA CRL."""
    if body[:1] == b"\x30":
        return body.hex()
    text = body.decode("ascii").strip()
    bytes.fromhex(text)  # raises ValueError if it is neither
    return text.lower()


def _members(text: str) -> dict[str, str]:
    """The top-level members of a JSON object with each value's exact source text (a signature
    covers the bytes as served, not a re-encoding)."""
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _skip(text, i + 1)
    out: dict[str, str] = {}
    while text[i : i + 1] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i : i + 1] != ":" or not isinstance(key, str):
            raise ValueError("malformed JSON object")
        start = _skip(text, i + 1)
        _, end = decoder.raw_decode(text, start)
        out[key] = text[start:end]
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
    return out


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    if i >= len(text):
        raise ValueError("truncated JSON")
    return i


def keep(core: CoreContext, found: dict[bytes, bytes]) -> None:
    """Hold ``fetch`` results until the next block posts them (bounded by what is wanted)."""
    still = {quote_hash for quote_hash, _ in wanted(core)}
    for quote_hash, collateral in found.items():
        if quote_hash in still:
            core.pccs_cache[quote_hash] = collateral


# ---- posting and reading back (block application) ---------------------------------------


def post_fetched(core: CoreContext, header: ev.BlockHeader) -> None:
    """At the end of a block, post what was fetched for registrations still waiting."""
    if not core.pccs_cache:
        return
    waiting = {w.quote_hash for w in core.state.workers.values() if w.standing in _PENDING}
    for quote_hash, collateral in sorted(core.pccs_cache.items()):
        if quote_hash in waiting and quote_hash not in core.state.pccs_for:
            payload = abi_encode(["bytes32", "bytes"], [quote_hash, zlib.compress(collateral, 9)])
            core.outbox.emit(
                core.keys.identity, core.address, topics.TOPIC_PCCS_COLLATERAL, payload
            )
            core.state.pccs_sent.add(quote_hash)
    core.pccs_cache.clear()


def on_pccs_collateral(core: CoreContext, header: ev.BlockHeader, event: ev.Egress) -> bool:
    """A gatekeeper posted the PCCS's collateral for a quote: the first to land is the one every
    core judges that quote under. True if it was taken (the caller judges what now can be)."""
    state = core.state
    if not enabled(core) or event.origin not in state.gatekeepers:
        return False
    try:
        quote_hash, packed = abi_decode(["bytes32", "bytes"], event.payload)
        collateral = bounded_decompress(packed, limits.MAX_COLLATERAL_BYTES)
    except (CodecError, ValueError):
        return False
    if quote_hash in state.pccs_for:
        return False
    if not any(
        w.quote_hash == quote_hash and w.standing in _PENDING for w in state.workers.values()
    ):
        return False
    digest = keccak(collateral)
    state.collaterals[digest] = collateral
    state.pccs_for[quote_hash] = digest
    return True


def bounded_decompress(data: bytes, limit: int) -> bytes:
    """zlib-inflate ``data`` to at most ``limit`` bytes (ValueError beyond, or if malformed)."""
    decompressor = zlib.decompressobj()
    try:
        out = decompressor.decompress(data, limit)
    except zlib.error as exc:
        raise ValueError("bad compressed data") from exc
    if decompressor.unconsumed_tail or not decompressor.eof:
        raise ValueError("compressed data too large or truncated")
    return out
