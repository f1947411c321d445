"""``veil bench crypto``: envelope sealing/opening, signing and recovery beside raw primitives.
Baselines (raw ``cryptography`` HPKE and AES-GCM, raw coincurve) are measured in the same run."""

from __future__ import annotations

import os
from typing import Any

import coincurve
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veilnet.bench._registry import benchmark, timeit_per_call
from veilnet.crypto import (
    Address,
    Binding,
    Domain,
    MessageType,
    SecretKey,
    Suite,
    open_envelope,
    recover_typed,
    seal_for,
    sign_typed,
)

_EGRESS = MessageType("Egress", (("origin", "address"), ("seq", "uint64"), ("payload", "bytes")))


@benchmark("crypto")
def _bench(quick: bool) -> dict[str, Any]:
    min_time = 0.02 if quick else 0.3
    key = SecretKey.derive(b"\x42" * 32, "bench")
    binding = Binding(chain_id=31337, target=b"\x01" * 32, epoch=0, purpose="bench")
    figures: dict[str, Any] = {}
    suites = {
        "x25519": Suite.X25519_SHA256_AES256GCM,
        "mlkem768x25519": Suite.MLKEM768_X25519_SHA256_AES256GCM,
    }
    sizes = {"1k": 1024, "64k": 64 * 1024}
    raw_suites = {
        "x25519": (
            hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
            key._hpke_private(Suite.X25519_SHA256_AES256GCM),
        ),
        "mlkem768x25519": (
            hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
            key._hpke_private(Suite.MLKEM768_X25519_SHA256_AES256GCM),
        ),
    }
    for suite_name, suite in suites.items():
        raw_suite, raw_private = raw_suites[suite_name]
        raw_public = raw_private.public_key()
        for size_name, size in sizes.items():
            message = os.urandom(size)
            sealed = seal_for(key.public, message, binding=binding, suite=suite)
            raw_sealed = raw_suite.encrypt(message, raw_public, info=b"bench")
            seal_s = timeit_per_call(
                lambda: seal_for(key.public, message, binding=binding, suite=suite),
                min_time=min_time,
            )
            open_s = timeit_per_call(
                lambda: open_envelope(key, sealed, binding=binding), min_time=min_time
            )
            raw_seal_s = timeit_per_call(
                lambda: raw_suite.encrypt(message, raw_public, info=b"bench"), min_time=min_time
            )
            raw_open_s = timeit_per_call(
                lambda: raw_suite.decrypt(raw_sealed, raw_private, info=b"bench"), min_time=min_time
            )
            prefix = "hpke" if suite_name == "x25519" else f"hpke_{suite_name}"
            figures[f"{prefix}_seal_{size_name}_us"] = round(seal_s * 1e6, 2)
            figures[f"{prefix}_open_{size_name}_us"] = round(open_s * 1e6, 2)
            figures[f"{prefix}_seal_{size_name}_overhead_x"] = round(seal_s / raw_seal_s, 3)
            figures[f"{prefix}_open_{size_name}_overhead_x"] = round(open_s / raw_open_s, 3)

    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    one_k = os.urandom(1024)
    figures["raw_aead_1k_us"] = round(
        timeit_per_call(lambda: aead.encrypt(nonce, one_k, b""), min_time=min_time) * 1e6, 3
    )
    sealer = key.symmetric("bench")
    figures["sealed_value_1k_us"] = round(
        timeit_per_call(lambda: sealer.seal(one_k, aad=b"k"), min_time=min_time) * 1e6, 3
    )

    domain = Domain(chain_id=31337, verifying_contract=Address(b"\x02" * 20))
    values = {"origin": key.address, "seq": 7, "payload": one_k}
    signature = sign_typed(key, domain, _EGRESS, values)
    sign_s = timeit_per_call(lambda: sign_typed(key, domain, _EGRESS, values), min_time=min_time)
    recover_s = timeit_per_call(
        lambda: recover_typed(signature, domain, _EGRESS, values), min_time=min_time
    )
    raw_key = coincurve.PrivateKey(b"\x07" * 32)
    digest = b"\x09" * 32
    raw_sig = raw_key.sign_recoverable(digest, hasher=None)
    raw_sign_s = timeit_per_call(
        lambda: raw_key.sign_recoverable(digest, hasher=None), min_time=min_time
    )
    raw_recover_s = timeit_per_call(
        lambda: coincurve.PublicKey.from_signature_and_message(raw_sig, digest, hasher=None),
        min_time=min_time,
    )
    figures["sign_per_s"] = round(1 / sign_s)
    figures["recover_per_s"] = round(1 / recover_s)
    figures["raw_sign_per_s"] = round(1 / raw_sign_s)
    figures["raw_recover_per_s"] = round(1 / raw_recover_s)
    figures["sign_overhead_x"] = round(sign_s / raw_sign_s, 3)
    figures["recover_overhead_x"] = round(recover_s / raw_recover_s, 3)
    return {
        "figures": figures,
        "params": {
            "quick": quick,
            "sizes": list(sizes.values()),
            "message_type": _EGRESS.type_string,
        },
    }
