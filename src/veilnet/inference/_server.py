"""The gateway's ASGI app: OpenAI-compatible routes, every completion signed into a receipt.
Backends run in worker threads; streamed bodies are hashed as sent and signed before ``[DONE]``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from veilnet.crypto import EnvelopeInvalid, SecretKey, UnsupportedVersion, sign_text
from veilnet.errors import InternalError, VeilnetError
from veilnet.inference._attestation import attestation_report
from veilnet.inference._receipts import Receipt, ReceiptStore, receipt_text
from veilnet.inference._requests import (
    parse_chat_request,
    parse_completion_request,
    parse_json_body,
)
from veilnet.inference.constants import (
    MAX_RECEIPT_ID_LENGTH,
    MAX_REQUEST_BYTES,
    NONCE_LENGTH,
    RECEIPT_ID_PREFIX_CHAT,
    RECEIPT_ID_PREFIX_COMPLETION,
    RECEIPT_ID_RANDOM_BYTES,
)
from veilnet.inference.errors import (
    InferenceNotFound,
    InferenceRequestInvalid,
    InferenceRequestTooLarge,
)
from veilnet.inference.interfaces import Backend, Enclave
from veilnet.protocol.gateway import (
    SEALED_CHAT_PATH,
    encryption_key_text,
    open_chat,
    seal_reply,
)

__all__ = ["RECEIPT_HEADER", "Gateway", "create_app"]

RECEIPT_HEADER = "x-veil-receipt"
_JSON = "application/json"
_DONE = b"data: [DONE]\n\n"
_END = object()


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(document: Any) -> bytes:
    return b"data: " + _dumps(document) + b"\n\n"


class Gateway:
    """The gateway's state: backend, attested signing key, enclave, receipts and entropy."""

    def __init__(
        self,
        backend: Backend,
        signer_key: SecretKey,
        enclave: Enclave,
        *,
        receipts: ReceiptStore | None = None,
        entropy: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.backend = backend
        self.enclave = enclave
        self.receipts = receipts if receipts is not None else ReceiptStore()
        self._key = signer_key
        self.signing_address = signer_key.address
        self._entropy = entropy
        # sealed chats go to the signing key's X25519 half, vouched for by the signing key
        self.encryption_key = signer_key.public.x25519
        self._encryption_signature = sign_text(signer_key, encryption_key_text(self.encryption_key))

    def new_id(self, prefix: str) -> str:
        return prefix + self._entropy(RECEIPT_ID_RANDOM_BYTES).hex()

    def sign(self, receipt_id: str, request_body: bytes, response_body: bytes) -> Receipt:
        return self._sign_text(receipt_id, receipt_text(request_body, response_body))

    def _sign_text(self, receipt_id: str, text: str) -> Receipt:
        receipt = Receipt(
            id=receipt_id,
            text=text,
            signature=sign_text(self._key, text),
            signing_address=self.signing_address,
        )
        self.receipts.put(receipt)
        return receipt

    def report(self, nonce: bytes) -> dict[str, Any]:
        return attestation_report(
            self.enclave,
            self.signing_address,
            nonce,
            encryption_key=self.encryption_key,
            encryption_key_signature=self._encryption_signature,
        )

    def open_sealed(self, envelope: bytes) -> tuple[bytes, bytes]:
        """``(request_body, reply_to)`` of a sealed chat; InferenceRequestInvalid if it is not
        one sealed to this gateway."""
        try:
            return open_chat(self._key, envelope)
        except (EnvelopeInvalid, UnsupportedVersion, ValueError, UnicodeDecodeError) as exc:
            raise InferenceRequestInvalid("not a chat sealed to this gateway") from exc

    def fresh_nonce(self) -> bytes:
        return self._entropy(NONCE_LENGTH)

    def signed_stream(
        self, receipt_id: str, request_body: bytes, first: Any, rest: Iterator[Any]
    ) -> AsyncIterator[bytes]:
        """SSE bytes of ``first`` and ``rest`` then ``[DONE]``, signed over the whole body.

        ``rest`` is closed when the body ends or the client goes away, so a backend that holds
        a lock while generating releases it.
        """

        async def body() -> AsyncIterator[bytes]:
            digest = hashlib.sha256()

            def out(chunk: bytes) -> bytes:
                digest.update(chunk)
                return chunk

            try:
                if first is not _END:
                    yield out(_sse(_with_id(first, receipt_id)))
                    async for chunk in iterate_in_threadpool(rest):
                        yield out(_sse(_with_id(chunk, receipt_id)))
            except VeilnetError as exc:
                yield out(_sse(exc.to_json()))
            finally:
                _close(rest)
            digest.update(_DONE)
            text = f"{hashlib.sha256(request_body).hexdigest()}:{digest.hexdigest()}"
            self._sign_text(receipt_id, text)
            yield _DONE

        return body()


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        # A generator still running in a worker thread cannot be closed here; it is then
        # finalized (and its lock released) as soon as that thread lets go of it.
        with contextlib.suppress(ValueError):
            close()


def _with_id(document: Any, receipt_id: str) -> Any:
    if not isinstance(document, dict):
        raise InternalError("backend returned a non-object")
    return {**document, "id": receipt_id}


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise InferenceRequestTooLarge("request body is too large", limit=MAX_REQUEST_BYTES)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise InferenceRequestTooLarge("request body is too large", limit=MAX_REQUEST_BYTES)
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    backend: Backend,
    signer_key: SecretKey,
    enclave: Enclave,
    *,
    receipts: ReceiptStore | None = None,
    entropy: Callable[[int], bytes] = os.urandom,
) -> Starlette:
    """The gateway as an ASGI app.

    Args:
        backend: the model server (``LlamaCppBackend`` or ``UpstreamBackend``).
        signer_key: the gateway's key, generated inside the enclave; its address is attested.
        enclave: quotes the signing address with a client's nonce.
        receipts: where signed receipts are kept (a bounded in-memory store by default).
        entropy: randomness for receipt ids and default nonces.
    """
    gateway = Gateway(backend, signer_key, enclave, receipts=receipts, entropy=entropy)

    async def models(_: Request) -> Response:
        data = await run_in_threadpool(backend.models)
        return Response(_dumps({"object": "list", "data": data}), media_type=_JSON)

    async def completion(request: Request, *, chat: bool) -> Response:
        body = await _read_body(request)
        document = parse_json_body(body)
        receipt_id: str
        iterator: Iterator[dict[str, Any]]
        if chat:
            parsed_chat = parse_chat_request(document)
            stream = parsed_chat.stream
            receipt_id = gateway.new_id(RECEIPT_ID_PREFIX_CHAT)
            if not stream:
                result = await run_in_threadpool(backend.chat, parsed_chat)
            else:
                iterator = await run_in_threadpool(backend.chat_stream, parsed_chat)
        else:
            parsed = parse_completion_request(document)
            stream = parsed.stream
            receipt_id = gateway.new_id(RECEIPT_ID_PREFIX_COMPLETION)
            if not stream:
                result = await run_in_threadpool(backend.complete, parsed)
            else:
                iterator = await run_in_threadpool(backend.complete_stream, parsed)
        headers = {RECEIPT_HEADER: receipt_id}
        if not stream:
            out = _dumps(_with_id(result, receipt_id))
            gateway.sign(receipt_id, body, out)
            return Response(out, media_type=_JSON, headers=headers)
        # Pull the first chunk before answering, so early failures get a proper status code.
        first = await run_in_threadpool(next, iterator, _END)
        return StreamingResponse(
            gateway.signed_stream(receipt_id, body, first, iterator),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )

    async def chat_completions(request: Request) -> Response:
        return await completion(request, chat=True)

    async def sealed_chat(request: Request) -> Response:
        """A chat only an enclave core and this gateway read: the request arrives sealed to
        the attested key, the answer and its receipt leave sealed to the core's reply key."""
        request_body, reply_to = gateway.open_sealed(await _read_body(request))
        parsed = parse_chat_request(parse_json_body(request_body))
        if parsed.stream:
            raise InferenceRequestInvalid("a sealed chat is not streamed", field="stream")
        receipt_id = gateway.new_id(RECEIPT_ID_PREFIX_CHAT)
        result = await run_in_threadpool(backend.chat, parsed)
        out = _dumps(_with_id(result, receipt_id))
        receipt = gateway.sign(receipt_id, request_body, out)
        sealed = seal_reply(reply_to, gateway.signing_address, out, receipt.to_json())
        return Response(sealed, media_type="application/octet-stream")

    async def completions(request: Request) -> Response:
        return await completion(request, chat=False)

    async def signature(request: Request) -> Response:
        receipt_id = request.path_params["receipt_id"]
        found = (
            None if len(receipt_id) > MAX_RECEIPT_ID_LENGTH else gateway.receipts.get(receipt_id)
        )
        if found is None:
            raise InferenceNotFound("no receipt with this id", receipt_id=receipt_id[:64])
        return Response(_dumps(found.to_json()), media_type=_JSON)

    async def attestation(request: Request) -> Response:
        raw = request.query_params.get("nonce")
        if raw is None:
            nonce = gateway.fresh_nonce()
        else:
            try:
                nonce = bytes.fromhex(raw.removeprefix("0x"))
            except ValueError as exc:
                raise InferenceRequestInvalid("nonce must be hex", field="nonce") from exc
            if len(nonce) != NONCE_LENGTH:
                raise InferenceRequestInvalid(f"nonce must be {NONCE_LENGTH} bytes", field="nonce")
        document = await run_in_threadpool(gateway.report, nonce)
        return Response(_dumps(document), media_type=_JSON)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "signing_address": gateway.signing_address.hex})

    async def on_veilnet_error(_: Request, exc: Exception) -> Response:
        if not isinstance(exc, VeilnetError):  # pragma: no cover - starlette keys on the type
            raise exc
        return JSONResponse(exc.to_json(), status_code=exc.http_status)

    async def on_http_error(_: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # pragma: no cover
            raise exc
        code = {404: "inference_not_found", 405: "inference_method_not_allowed"}.get(
            exc.status_code, "inference_request_invalid"
        )
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code
        )

    async def on_unexpected(_: Request, exc: Exception) -> Response:
        error = InternalError("the gateway failed to handle this request")
        return JSONResponse(error.to_json(), status_code=error.http_status)

    app = Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route(SEALED_CHAT_PATH, sealed_chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/signature/{receipt_id:str}", signature, methods=["GET"]),
            Route("/v1/attestation/report", attestation, methods=["GET"]),
            Route("/v1/health", health, methods=["GET"]),
        ],
        exception_handlers={
            VeilnetError: on_veilnet_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
    )
    app.state.gateway = gateway
    return app
