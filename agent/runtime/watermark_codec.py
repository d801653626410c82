"""The code the watermark carries: 32 payload bits + CRC-16, decoded from soft bits with a Chase search.

A codeword is the payload's bits followed by its CRC-16/CCITT (48 bits). The decoder takes one soft value
per bit (sign = bit, magnitude = reliability), tries the hard decision and the 2**CHASE_BITS - 1 patterns
that flip the least reliable bits, and accepts the first whose CRC holds. For an image without a mark each
try passes its CRC with probability 2**-16, so one decode accepts a random codeword with probability at
most ``2**CHASE_BITS * 2**-16`` (1/4096 with 4 Chase bits): the false-positive bound ``detect`` states.
"""

from __future__ import annotations

import itertools

import numpy as np

PAYLOAD_BITS = 32
CRC_BITS = 16
CODE_BITS = PAYLOAD_BITS + CRC_BITS
CHASE_BITS = 4  # flips tried among the least reliable bits: 16 tries per decode


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _bits(data: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n].astype(np.int8)


def encode(payload: bytes) -> np.ndarray:
    """The codeword's bits (0/1, length CODE_BITS) for a PAYLOAD_BITS-bit payload."""
    if len(payload) * 8 != PAYLOAD_BITS:
        raise ValueError(f"payload must be {PAYLOAD_BITS // 8} bytes, got {len(payload)}")
    return np.concatenate([_bits(payload, PAYLOAD_BITS), _bits(crc16(payload).to_bytes(2, "big"), CRC_BITS)])


def _check(bits: np.ndarray) -> bytes | None:
    payload = np.packbits(bits[:PAYLOAD_BITS].astype(np.uint8)).tobytes()
    crc = int.from_bytes(np.packbits(bits[PAYLOAD_BITS:].astype(np.uint8)).tobytes(), "big")
    return payload if crc16(payload) == crc else None


def decode(soft: np.ndarray) -> tuple[bytes | None, int]:
    """The payload whose CRC holds after flipping at most CHASE_BITS weakest bits, and how many bits it flipped."""
    hard = (soft > 0).astype(np.int8)
    weakest = np.argsort(np.abs(soft))[:CHASE_BITS]
    for k in range(CHASE_BITS + 1):
        for flips in itertools.combinations(weakest, k):
            trial = hard.copy()
            trial[list(flips)] ^= 1
            payload = _check(trial)
            if payload is not None:
                return payload, k
    return None, 0
