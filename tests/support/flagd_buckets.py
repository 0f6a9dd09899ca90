"""flagd's fractional bucketing, written from its specification rather than taken from the provider, so tests can
say exactly which targeting keys a percent rollout serves `on`.

The specification (flagd `fractional`, no explicit bucketing expression): hash the canonical CBOR encoding of
[flag key, targeting key] with murmur3 (32 bit, unsigned); the bucket is hash * total weight >> 32; the
variants take consecutive ranges of buckets in the order listed (`on` first).
"""

import cbor2
import mmh3


def served_on(flag: str, targeting_key: str, percent: int) -> bool:
    bucket = (mmh3.hash(cbor2.dumps([flag, targeting_key], canonical=True), signed=False) * 100) >> 32
    return bucket < percent
