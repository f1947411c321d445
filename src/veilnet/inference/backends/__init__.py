"""Model backends of the gateway: llama.cpp in process, or any OpenAI-compatible upstream.
Each satisfies ``veilnet.inference.interfaces.Backend``."""

from veilnet.inference.backends.llama_cpp import LlamaCppBackend
from veilnet.inference.backends.upstream import UpstreamBackend, UpstreamKey

__all__ = ["LlamaCppBackend", "UpstreamBackend", "UpstreamKey"]
