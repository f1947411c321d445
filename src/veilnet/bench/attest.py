"""``veil bench attest``: dev quote generation and full verification, next to bare dcap-qvl.
Figures: ``verify_ms`` (parse + dcap-qvl + policy), ``bare_dcap_qvl_ms``, ``dev_quote_ms``."""

from __future__ import annotations

from typing import Any

import dcap_qvl

from veilnet.attestation import Policy, verify_quote_at
from veilnet.bench import benchmark, timeit_per_call
from veilnet.tee import DevEnclave

_ISSUED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z, pinned so runs are comparable
_AT = _ISSUED_AT + 3600


@benchmark("attest")
def _bench(quick: bool) -> dict[str, Any]:
    min_time = 0.05 if quick else 0.5
    enclave = DevEnclave(
        b"veilnet bench attest network seed",
        kind="tdx",
        allow_insecure_dev_tee=True,
        collateral_issued_at=_ISSUED_AT,
    )
    report_data = bytes(range(64))
    quote = enclave.quote(report_data)
    collateral = enclave.collateral()
    root = enclave.trust_root
    policy = Policy.development(allowed_measurements=frozenset({enclave.measurement.id}))
    dcap_collateral = collateral._for_dcap()

    def full() -> None:
        verify_quote_at(
            quote,
            collateral,
            at=_AT,
            policy=policy,
            root=root,
            expected_report_data=report_data,
        ).require_accepted()

    def bare() -> None:
        dcap_qvl.verify_with_root_ca(quote, dcap_collateral, root.der, _AT)

    full()
    verify_s = timeit_per_call(full, min_time=min_time)
    bare_s = timeit_per_call(bare, min_time=min_time)
    quote_s = timeit_per_call(lambda: enclave.quote(report_data), min_time=min_time)
    return {
        "figures": {
            "verify_ms": verify_s * 1e3,
            "bare_dcap_qvl_ms": bare_s * 1e3,
            "dev_quote_ms": quote_s * 1e3,
            "verify_per_s": 1 / verify_s,
            "dev_quotes_per_s": 1 / quote_s,
            "overhead_pct": (verify_s / bare_s - 1) * 100,
        },
        "params": {"tee": "tdx", "quote_bytes": len(quote), "target_verify_ms": 2.0},
    }
