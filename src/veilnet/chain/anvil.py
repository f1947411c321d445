"""Finds and runs anvil (npm ``@foundry-rs/anvil``, pinned, installed under ``.tools/``) as a
child process; the devnet and tests start and stop it. Offline: the binary needs no network."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from veilnet.chain.backends.rpc import RPCChain
from veilnet.chain.constants import DEFAULT_CHAIN_ID_ANVIL, DEV_ACCOUNTS, DEV_MNEMONIC
from veilnet.chain.errors import ChainNotReady, RPCUnavailable
from veilnet.chain.rpc import JSONRPCClient

__all__ = ["AnvilChain", "dev_accounts", "find_anvil"]


def _candidates(root: Path) -> list[Path]:
    modules = root / ".tools" / "node_modules"
    found = sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil"))
    return [*found, modules / ".bin" / "anvil"]


def find_anvil() -> Path | None:
    """``$VEIL_ANVIL``, else ``.tools/`` of the repository (or cwd), else ``anvil`` on PATH."""
    env = os.environ.get("VEIL_ANVIL")
    if env:
        path = Path(env)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    roots = [Path.cwd(), *Path(__file__).resolve().parents]
    for root in roots:
        for candidate in _candidates(root):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else None


def dev_accounts(count: int = DEV_ACCOUNTS) -> list[tuple[str, bytes]]:
    """The (address, private key) pairs anvil funds by default (test mnemonic, BIP-44 path)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    out = []
    for index in range(count):
        account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        out.append((str(account.address), bytes(account.key)))
    return out


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class AnvilChain(RPCChain):
    """An anvil child process. ``block_time=None`` mines a block per transaction.

    Raises:
        ChainNotReady: anvil is missing, exited, or did not answer within ``startup_timeout``.
    """

    def __init__(
        self,
        *,
        block_time: float | None = None,
        chain_id: int = DEFAULT_CHAIN_ID_ANVIL,
        port: int | None = None,
        accounts: int = DEV_ACCOUNTS,
        binary: Path | None = None,
        startup_timeout: float = 20.0,
        host: str = "127.0.0.1",
    ) -> None:
        exe = binary or find_anvil()
        if exe is None:
            raise ChainNotReady(
                "anvil not found: run make, set VEIL_ANVIL, or use the embedded chain"
            )
        self.port = port or _free_port(host)
        args = [
            str(exe),
            "--host",
            host,
            "--port",
            str(self.port),
            "--chain-id",
            str(chain_id),
            "--accounts",
            str(accounts),
            "--mnemonic",
            DEV_MNEMONIC,
            "--silent",
        ]
        if block_time:
            args += ["--block-time", str(block_time)]
        try:
            # Its own process group: a terminal's Ctrl-C reaches only its owner, which stops
            # the workers following this chain first and then closes it, so no follower sees
            # the node vanish under it.
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(  # noqa: S603
                args,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        except OSError as exc:
            raise ChainNotReady(f"cannot start anvil: {exc}") from exc
        url = f"http://{host}:{self.port}"
        deadline = time.monotonic() + startup_timeout
        probe = JSONRPCClient(url)
        while True:
            if self.process.poll() is not None:
                raise ChainNotReady(f"anvil exited with status {self.process.returncode}")
            try:
                probe.call("eth_chainId")
                break
            except RPCUnavailable:
                if time.monotonic() > deadline:
                    self.close()
                    raise ChainNotReady("anvil did not answer in time") from None
                time.sleep(0.05)
        probe.close()
        super().__init__(url, dev_accounts=dev_accounts(accounts))

    def close(self) -> None:
        super().close() if hasattr(self, "_client") else None
        process, self.process = getattr(self, "process", None), None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> AnvilChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
