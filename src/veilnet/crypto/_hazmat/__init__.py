"""Raw primitives behind the crypto recipes: KDF tree, HPKE suites, secp256k1, AEAD.
Hazardous: only ``veilnet.crypto`` and ``veilnet.runtime`` may import this package."""
