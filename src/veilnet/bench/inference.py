"""``veil bench inference``: tokens/s and time to first token through the gateway versus calling
llama_cpp directly on the same loaded model, same prompt, same run, rounds interleaved."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from veilnet.bench import benchmark
from veilnet.crypto import SecretKey

PROMPT = [{"role": "user", "content": "Write a long story about a robot who learns to paint."}]
SEED = 7
FULL_TOKENS = 64
QUICK_TOKENS = 16
FULL_ROUNDS = 9
QUICK_ROUNDS = 1


@benchmark("inference")
def _bench(quick: bool) -> dict[str, Any]:
    from veilnet.inference import LlamaCppBackend, create_app, default_model_path
    from veilnet.inference._serve import serve_in_thread
    from veilnet.tee.dev import DevEnclave

    max_tokens = QUICK_TOKENS if quick else FULL_TOKENS
    rounds = QUICK_ROUNDS if quick else FULL_ROUNDS
    backend = LlamaCppBackend(default_model_path(), seed=SEED)
    enclave = DevEnclave(b"veil bench inference dev network", allow_insecure_dev_tee=True)
    app = create_app(backend, SecretKey.generate(), enclave)
    body = {
        "model": backend.model_name,
        "messages": PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": SEED,
    }
    llama = backend.llama
    samples: dict[str, list[float]] = {
        k: [] for k in ("gw_tps", "d_tps", "overhead", "gw_ttft", "d_ttft")
    }
    tokens = 0
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=300) as http:
            _gateway_plain(http, body)  # warm-up: first-touch of weights and code paths
            _direct_plain(llama, max_tokens)
            for i in range(rounds):
                # Alternate which side goes first, so drift in machine load hits both alike.
                if i % 2:
                    d_tokens, d_seconds = _direct_plain(llama, max_tokens)
                    g_tokens, g_seconds = _gateway_plain(http, body)
                else:
                    g_tokens, g_seconds = _gateway_plain(http, body)
                    d_tokens, d_seconds = _direct_plain(llama, max_tokens)
                tokens = d_tokens
                samples["gw_tps"].append(g_tokens / g_seconds)
                samples["d_tps"].append(d_tokens / d_seconds)
                samples["overhead"].append(
                    (d_tokens / d_seconds - g_tokens / g_seconds) / (d_tokens / d_seconds) * 100
                )
                samples["gw_ttft"].append(_gateway_ttft(http, body))
                samples["d_ttft"].append(_direct_ttft(llama, max_tokens))
    finally:
        backend.close()
    gateway_tps = statistics.median(samples["gw_tps"])
    direct_tps = statistics.median(samples["d_tps"])
    gateway_ttft = statistics.median(samples["gw_ttft"]) * 1000
    direct_ttft = statistics.median(samples["d_ttft"]) * 1000
    return {
        "figures": {
            "gateway_tokens_per_s": round(gateway_tps, 2),
            "direct_tokens_per_s": round(direct_tps, 2),
            "overhead_pct": round(statistics.median(samples["overhead"]), 2),
            "gateway_ttft_ms": round(gateway_ttft, 2),
            "direct_ttft_ms": round(direct_ttft, 2),
            "ttft_overhead_ms": round(gateway_ttft - direct_ttft, 2),
            "completion_tokens": tokens,
        },
        "params": {
            "model": backend.model_name,
            "max_tokens": max_tokens,
            "rounds": rounds,
            "temperature": 0,
            "statistic": "medians of interleaved rounds; overhead_pct: median of paired rounds",
            "tokens_per_s": "completion tokens / wall time of one non-streamed call",
        },
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _gateway_plain(http: httpx.Client, body: dict[str, Any]) -> tuple[int, float]:
    response, seconds = _timed(lambda: http.post("/v1/chat/completions", json=body))
    response.raise_for_status()
    return int(response.json()["usage"]["completion_tokens"]), seconds


def _direct_call(llama: Any, max_tokens: int, *, stream: bool) -> Any:
    # The same work the backend does per request: a fresh context, then greedy generation.
    llama.reset()
    return llama.create_chat_completion(
        messages=PROMPT, max_tokens=max_tokens, temperature=0, seed=SEED, stream=stream
    )


def _direct_plain(llama: Any, max_tokens: int) -> tuple[int, float]:
    result, seconds = _timed(lambda: _direct_call(llama, max_tokens, stream=False))
    return int(result["usage"]["completion_tokens"]), seconds


def _gateway_ttft(http: httpx.Client, body: dict[str, Any]) -> float:
    start = time.perf_counter()
    first = 0.0
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        for line in response.iter_lines():
            if not first and line.startswith("data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("delta", {}).get("content"):
                    first = time.perf_counter() - start
    return first


def _direct_ttft(llama: Any, max_tokens: int) -> float:
    start = time.perf_counter()
    first = 0.0
    for chunk in _direct_call(llama, max_tokens, stream=True):
        if not first and chunk["choices"][0]["delta"].get("content"):
            first = time.perf_counter() - start
    return first
