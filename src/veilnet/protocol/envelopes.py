"""Wire formats shared by clients and the core: command plaintexts, query envelopes, responses.
Pure and I/O-free, so the SDK builds and checks exactly what the core opens and signs."""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass, field
from typing import Any

from veilnet.codec import Record, decode, encode, record
from veilnet.crypto import (
    Address,
    Binding,
    Domain,
    MessageType,
    PublicKeys,
    QuerySession,
    SecretKey,
    keccak,
    open_envelope,
    recover_text,
    seal_for,
    sign_text,
    sign_typed,
    suite_for_public_key,
    verify_typed,
)

PURPOSE_COMMAND = "command"
PURPOSE_INIT = "init"
PURPOSE_QUERY = "query"
PURPOSE_QUERY_SESSION = "query-session"
PURPOSE_CLUSTER_KEY = "cluster-key"
PURPOSE_MASTER_KEY = "master-key"

X25519_KEY_LENGTH = 32

INIT_PUBLIC_TAG = 0x00
"""First byte of public (unencrypted) init arguments; encrypted ones start with an envelope."""

QUERY_RESPONSE_TYPE = MessageType(
    "QueryResponse",
    (
        ("request_id", "bytes32"),
        ("contract_id", "bytes32"),
        ("block_number", "uint64"),
        ("block_hash", "bytes32"),
        ("state_commitment", "bytes32"),
        ("ciphertext", "bytes"),
    ),
)


# --- agent code ------------------------------------------------------------------------------


def pack_code(language: str, source: bytes) -> bytes:
    """The bytes deployed on chain for an agent: canonical ``{"lang", "src"}``."""
    if language not in ("js", "py"):
        raise ValueError("language must be 'js' or 'py'")
    return encode({"lang": language, "src": source})


def unpack_code(code: bytes, *, max_size: int = 1 << 20) -> tuple[str, bytes]:
    """Inverse of ``pack_code``; raises a CodecError or ValueError on anything else."""
    value = decode(code, max_size=max_size)
    if not isinstance(value, dict) or set(value) != {"lang", "src"}:
        raise ValueError("agent code must be {lang, src}")
    lang, src = value["lang"], value["src"]
    if lang not in ("js", "py") or not isinstance(src, bytes):
        raise ValueError("agent code must be {lang: js|py, src: bytes}")
    return str(lang), src


# --- commands --------------------------------------------------------------------------------


@record("command.plaintext")
@dataclass(frozen=True, slots=True, kw_only=True)
class CommandPlaintext(Record):
    """What a command envelope carries.

    ``kind`` is ``"call"`` (``body`` = JSON text for ``handle``) or ``"secret"`` (``body`` =
    canonical ``[name, value]``; owner only). ``sender`` must equal the transaction's sender and
    ``nonce`` must exceed the sender's last one for this contract (replay protection).
    """

    sender: bytes
    nonce: int
    kind: str
    body: bytes


def command_binding(chain_id: int, contract_id: bytes, epoch: int) -> Binding:
    return Binding(chain_id=chain_id, target=contract_id, epoch=epoch, purpose=PURPOSE_COMMAND)


def seal_command(
    contract_public: PublicKeys | bytes,
    plaintext: CommandPlaintext,
    *,
    chain_id: int,
    contract_id: bytes,
    epoch: int,
) -> bytes:
    """The ``push_command`` payload for a command."""
    return seal_for(
        contract_public,
        plaintext.to_bytes(),
        binding=command_binding(chain_id, contract_id, epoch),
    )


# --- queries ---------------------------------------------------------------------------------


def certificate_text(chain_id: int, ephemeral_key: bytes, expires_block: int) -> str:
    """The text a wallet signs (EIP-191) to certify a short-lived query key."""
    return (
        "Veilnet query key\n"
        f"chain: {chain_id}\n"
        f"key: 0x{ephemeral_key.hex()}\n"
        f"expires at block: {expires_block}"
    )


@record("query.certificate")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryCertificate(Record):
    wallet: bytes
    ephemeral_key: bytes
    chain_id: int
    expires_block: int
    signature: bytes

    def verify(self) -> None:
        """Raise SignatureInvalid unless ``wallet`` signed this certificate."""
        text = certificate_text(self.chain_id, self.ephemeral_key, self.expires_block)
        recovered = recover_text(self.signature, text)
        if not hmac.compare_digest(recovered.raw, self.wallet):
            from veilnet.crypto import SignatureInvalid

            raise SignatureInvalid("certificate was not signed by its wallet")

    @property
    def digest(self) -> bytes:
        return _certificate_digest(self)


@functools.lru_cache(maxsize=1024)
def _certificate_digest(certificate: QueryCertificate) -> bytes:
    """Memoised: a client reuses one certificate for many queries, and so does its worker."""
    return keccak(certificate.to_bytes())


def make_certificate(
    wallet: SecretKey, ephemeral: SecretKey, *, chain_id: int, expires_block: int
) -> QueryCertificate:
    ephemeral_key = ephemeral.public.x25519
    text = certificate_text(chain_id, ephemeral_key, expires_block)
    return QueryCertificate(
        wallet=wallet.address.raw,
        ephemeral_key=ephemeral_key,
        chain_id=chain_id,
        expires_block=expires_block,
        signature=sign_text(wallet, text),
    )


@record("query.plaintext")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryPlaintext(Record):
    """Inside a sealed query: ``kind`` is ``"call"`` (``body`` = JSON for ``query``) or
    ``"outcome"`` (``body`` = canonical command seq; only its sender may read it)."""

    certificate_digest: bytes
    kind: str
    body: bytes
    worker: bytes
    """The worker the client sent it to: any other worker refuses it, so a captured query
    cannot be replayed at another replica of the cluster."""
    boot_id: bytes
    """That worker's boot id (``/v1/health``): a core draws a new one at each start and refuses
    the old, so a captured query cannot be replayed after a restart either."""
    window: int
    """The newest block the client knew of: answerable while the worker's head is within
    ``QUERY_WINDOW_BLOCKS`` after it, so the worker remembers the request id only that long."""


@record("query.request")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryRequest(Record):
    """What a client POSTs: ``session`` is the session secret HPKE-sealed to the contract key
    (the same for every query of one certificate), ``ciphertext`` the QueryPlaintext sealed
    under the session's request key for ``request_id``."""

    contract_id: bytes
    certificate: QueryCertificate
    session: bytes
    request_id: bytes
    ciphertext: bytes


@record("query.response")
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryResponse(Record):
    request_id: bytes
    contract_id: bytes
    worker: bytes
    block_number: int
    block_hash: bytes
    state_commitment: bytes
    ciphertext: bytes
    signature: bytes

    def signed_values(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "contract_id": self.contract_id,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "state_commitment": self.state_commitment,
            "ciphertext": self.ciphertext,
        }


def query_binding(chain_id: int, contract_id: bytes, epoch: int) -> Binding:
    return Binding(chain_id=chain_id, target=contract_id, epoch=epoch, purpose=PURPOSE_QUERY)


def session_binding(chain_id: int, contract_id: bytes, epoch: int) -> Binding:
    """What a query session is for: the chain, the contract and the key epoch of the request."""
    return Binding(
        chain_id=chain_id, target=contract_id, epoch=epoch, purpose=PURPOSE_QUERY_SESSION
    )


@dataclass(frozen=True, slots=True)
class ClientSession:
    """A client's session with one contract key: the sealed secret each request carries, and
    the keys that seal its requests and open the answers."""

    contract_id: bytes
    epoch: int
    envelope: bytes
    keys: QuerySession = field(repr=False)


def open_session(
    ephemeral: SecretKey,
    contract_public: PublicKeys | bytes,
    *,
    chain_id: int,
    contract_id: bytes,
    epoch: int,
    secret: bytes,
) -> ClientSession:
    """Client side, once per certificate and contract key: seal ``secret`` (32 fresh random
    bytes) to the contract key and derive the session keys.

    Raises:
        KeyInvalid / EnvelopeInvalid: the contract key is not an X25519 or hybrid HPKE key.
    """
    raw = contract_public.x25519 if isinstance(contract_public, PublicKeys) else contract_public
    suite = suite_for_public_key(raw)
    envelope = seal_for(
        raw, secret, binding=query_binding(chain_id, contract_id, epoch), suite=suite
    )
    # both suites' keys end with the same X25519 key (a hybrid key is ML-KEM-768 then X25519)
    keys = QuerySession.agree(
        ephemeral,
        raw[-X25519_KEY_LENGTH:],
        binding=session_binding(chain_id, contract_id, epoch),
        secret=secret,
    )
    return ClientSession(contract_id=contract_id, epoch=epoch, envelope=envelope, keys=keys)


def worker_session(
    contract_key: SecretKey,
    envelope: bytes,
    ephemeral_key: bytes,
    *,
    chain_id: int,
    contract_id: bytes,
    epoch: int,
) -> QuerySession:
    """Worker side: open a request's session secret and derive the same keys as the client.

    Raises:
        EnvelopeInvalid / UnsupportedVersion: the envelope is not for this contract key.
        KeyInvalid: the certificate's query key is unusable.
    """
    secret = open_envelope(
        contract_key, envelope, binding=query_binding(chain_id, contract_id, epoch)
    )
    return QuerySession.agree(
        contract_key,
        ephemeral_key,
        binding=session_binding(chain_id, contract_id, epoch),
        secret=secret,
    )


def build_query(
    *,
    session: ClientSession,
    certificate: QueryCertificate,
    request_id: bytes,
    kind: str,
    body: bytes,
    worker: bytes,
    boot_id: bytes,
    window: int,
) -> bytes:
    """Client side: the bytes to POST to a worker's ``/v1/query`` (``worker``: its address,
    ``boot_id``: from its ``/v1/health``, ``window``: the client's newest block number)."""
    plaintext = QueryPlaintext(
        certificate_digest=certificate.digest,
        kind=kind,
        body=body,
        worker=worker,
        boot_id=boot_id,
        window=window,
    )
    ciphertext = session.keys.seal(plaintext.to_bytes(), request_id=request_id, direction="request")
    return QueryRequest(
        contract_id=session.contract_id,
        certificate=certificate,
        session=session.envelope,
        request_id=request_id,
        ciphertext=ciphertext,
    ).to_bytes()


def sign_response(
    worker: SecretKey,
    domain: Domain,
    *,
    request_id: bytes,
    contract_id: bytes,
    block_number: int,
    block_hash: bytes,
    state_commitment: bytes,
    ciphertext: bytes,
) -> QueryResponse:
    signed: dict[str, Any] = {
        "request_id": request_id,
        "contract_id": contract_id,
        "block_number": block_number,
        "block_hash": block_hash,
        "state_commitment": state_commitment,
        "ciphertext": ciphertext,
    }  # what ``QueryResponse.signed_values`` reads back
    return QueryResponse(
        **signed,
        worker=worker.address.raw,
        signature=sign_typed(worker, domain, QUERY_RESPONSE_TYPE, signed),
    )


def open_response(
    response: QueryResponse,
    *,
    domain: Domain,
    session: QuerySession,
    expected_request_id: bytes,
) -> bytes:
    """Client side: check the worker's signature and the request id, then decrypt.

    The caller must still check that ``response.worker`` is a registered, attested worker and
    that ``block_hash`` is on its own view of the chain and fresh.
    """
    from veilnet.crypto import SignatureInvalid

    if not hmac.compare_digest(response.request_id, expected_request_id):
        raise SignatureInvalid("response answers another request")
    verify_typed(
        Address(response.worker),
        response.signature,
        domain,
        QUERY_RESPONSE_TYPE,
        response.signed_values(),
    )
    return session.open(response.ciphertext, request_id=response.request_id, direction="response")
