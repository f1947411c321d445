"""The error tree's contract and the import direction of the package layout."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import veilnet
from veilnet.errors import (
    InternalError,
    InvalidInput,
    PolicyRejected,
    Unavailable,
    VeilnetError,
    error_codes,
)

BRANCHES = (InvalidInput, PolicyRejected, Unavailable, InternalError)


def _import_all() -> None:
    for module in pkgutil.walk_packages(veilnet.__path__, "veilnet."):
        if module.name.startswith(("veilnet.cli", "veilnet.bench")):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # optional backends whose packages are not installed
            continue


def test_every_error_has_a_unique_stable_code_and_status() -> None:
    _import_all()
    seen: dict[str, type[VeilnetError]] = {}
    stack: list[type[VeilnetError]] = [VeilnetError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls is VeilnetError:
            continue
        assert cls.code not in seen or seen[cls.code] is cls, f"duplicate code {cls.code}"
        seen[cls.code] = cls
        assert cls.code.islower() and " " not in cls.code
        assert 400 <= cls.http_status < 600
        assert issubclass(cls, BRANCHES) or cls in BRANCHES, f"{cls} is outside the four branches"
        assert cls.__doc__, f"{cls} needs a docstring saying when it is raised"
    assert set(error_codes()) >= set(seen)


def test_error_json_shape_carries_details_not_secrets() -> None:
    error = InvalidInput("bad thing", max_size=10)
    assert error.to_json() == {
        "error": {"code": "invalid_input", "message": "bad thing", "max_size": 10}
    }
    assert str(InternalError()) == "Veilnet itself is at fault (a bug); please report it."


def test_public_surface() -> None:
    assert set(veilnet.__all__) >= {
        "VeilnetError",
        "InvalidInput",
        "PolicyRejected",
        "Unavailable",
        "InternalError",
    }


def test_core_packages_import_no_io_libraries() -> None:
    """Dependencies point inward: crypto, codec and runtime pull in no web, RPC or worker code."""
    code = (
        "import sys, veilnet.crypto, veilnet.codec\n"
        "try:\n    import veilnet.runtime\nexcept ImportError:\n    pass\n"
        "bad = [m for m in ('web3', 'httpx', 'fastapi', 'starlette', 'uvicorn', 'requests', 'aiohttp',"
        " 'veilnet.worker', 'veilnet.chain.rpc', 'veilnet.sdk', 'veilnet.cli') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_every_module_opens_with_a_docstring() -> None:
    _import_all()
    for name, module in list(sys.modules.items()):
        if name.startswith("veilnet"):
            assert module.__doc__ and module.__doc__.strip(), f"{name} has no module docstring"
