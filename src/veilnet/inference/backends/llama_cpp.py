"""The local backend: a GGUF model run in process by ``llama-cpp-python``, one request at a time.
The context is reset before each request, so temperature 0 gives the same text on every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from veilnet.inference._requests import ChatRequest, CompletionRequest, SamplingParams
from veilnet.inference.constants import (
    DEFAULT_MODEL_ALIASES,
    DEFAULT_MODEL_NAME,
    DEFAULT_N_CTX,
    DEFAULT_SEED,
)
from veilnet.inference.errors import (
    InferenceBackendUnavailable,
    InferenceModelMissing,
    InferenceNotFound,
    InferenceRequestInvalid,
)

__all__ = ["LlamaCppBackend", "load_llama"]


def load_llama(model_path: Path, *, seed: int, n_ctx: int, n_threads: int | None) -> Any:
    """A ``llama_cpp.Llama`` for ``model_path``; raises InferenceModelMissing if unavailable."""
    try:
        import llama_cpp  # optional, heavy native dependency: imported on use
    except ImportError as exc:
        raise InferenceModelMissing("llama_cpp (llama-cpp-python) is not installed") from exc
    if not model_path.is_file():
        raise InferenceModelMissing("model file not found", model=str(model_path))
    try:
        return llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            seed=seed,
            n_threads=n_threads,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise InferenceModelMissing(
            "the model file could not be loaded", model=str(model_path)
        ) from exc


@contextmanager
def _translate() -> Iterator[None]:
    try:
        yield
    except ValueError as exc:  # llama_cpp: prompt longer than the context, bad grammar, ...
        raise InferenceRequestInvalid("the model rejected the request") from exc
    except RuntimeError as exc:
        raise InferenceBackendUnavailable("the model failed while generating") from exc


class LlamaCppBackend:
    """GGUF model through llama.cpp; the embedded default is SmolLM2-135M-Instruct.

    Args:
        model_path: the ``.gguf`` file (see ``default_model_path()``).
        model_name: the id served at ``/v1/models`` and expected in requests.
        aliases: other model ids accepted in requests.
        seed: sampler seed for requests that give none.
        n_ctx: context length in tokens.
        n_threads: CPU threads (llama.cpp's default when None).
        clock: seconds since the epoch, for ``created`` fields.
    """

    def __init__(
        self,
        model_path: Path | str,
        *,
        model_name: str = DEFAULT_MODEL_NAME,
        aliases: tuple[str, ...] = DEFAULT_MODEL_ALIASES,
        seed: int = DEFAULT_SEED,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.model_path = Path(model_path)
        self.model_name = model_name
        self._names = frozenset({model_name, *aliases})
        self._seed = seed
        self._clock = clock
        self._lock = threading.Lock()
        self.llama = load_llama(self.model_path, seed=seed, n_ctx=n_ctx, n_threads=n_threads)

    # -- Backend ------------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        return [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "veilnet"}]

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        self._check_model(request.model)
        with self._lock, _translate():
            self.llama.reset()
            result = self.llama.create_chat_completion(
                messages=self._messages(request), stream=False, **self._sampling(request.params)
            )
        return self._finish(dict(result))

    def chat_stream(self, request: ChatRequest) -> Iterator[dict[str, Any]]:
        self._check_model(request.model)
        return self._stream(
            lambda: self.llama.create_chat_completion(
                messages=self._messages(request), stream=True, **self._sampling(request.params)
            ),
            include_usage=request.include_usage,
            chunk_object="chat.completion.chunk",
        )

    def complete(self, request: CompletionRequest) -> dict[str, Any]:
        self._check_model(request.model)
        with self._lock, _translate():
            self.llama.reset()
            result = self.llama.create_completion(
                prompt=request.prompt, stream=False, **self._sampling(request.params)
            )
        return self._finish(dict(result))

    def complete_stream(self, request: CompletionRequest) -> Iterator[dict[str, Any]]:
        self._check_model(request.model)
        return self._stream(
            lambda: self.llama.create_completion(
                prompt=request.prompt, stream=True, **self._sampling(request.params)
            ),
            include_usage=request.include_usage,
            chunk_object="text_completion",
        )

    def close(self) -> None:
        with self._lock:
            close = getattr(self.llama, "close", None)
            if close is not None:
                close()

    # -- helpers ------------------------------------------------------------------------------

    def _check_model(self, model: str) -> None:
        if model not in self._names:
            served = sorted(self._names)
            raise InferenceNotFound(
                f"this gateway does not serve that model; it serves {', '.join(served)}",
                model=model[:64],
                served=served,
            )

    @staticmethod
    def _messages(request: ChatRequest) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in request.messages]

    def _sampling(self, params: SamplingParams) -> dict[str, Any]:
        return {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": self._seed if params.seed is None else params.seed,
            "stop": list(params.stop) or None,
            "presence_penalty": params.presence_penalty,
            "frequency_penalty": params.frequency_penalty,
        }

    def _finish(self, result: dict[str, Any]) -> dict[str, Any]:
        result["model"] = self.model_name
        return result

    def _stream(
        self,
        start: Callable[[], Iterator[dict[str, Any]]],
        *,
        include_usage: bool,
        chunk_object: str,
    ) -> Iterator[dict[str, Any]]:
        """Chunks of one generation; the model lock is held until the generator ends or closes."""

        def generate() -> Iterator[dict[str, Any]]:
            with self._lock, _translate():
                self.llama.reset()
                completion_tokens = 0
                last: dict[str, Any] = {}
                for chunk in start():
                    last = dict(chunk)
                    last["model"] = self.model_name
                    choices = last.get("choices") or [{}]
                    piece = choices[0].get("delta", {}).get("content") or choices[0].get("text")
                    if piece:
                        completion_tokens += 1
                    yield last
                if include_usage:
                    # llama.cpp's stream carries no usage; n_tokens counts prompt + evaluated
                    # output, so prompt tokens are what remains after the streamed pieces.
                    prompt_tokens = max(0, int(self.llama.n_tokens) - completion_tokens)
                    yield {
                        "id": last.get("id", ""),
                        "object": chunk_object,
                        "created": int(self._clock()),
                        "model": self.model_name,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    }

        return generate()
