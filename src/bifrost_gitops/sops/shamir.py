"""Shamir secret sharing over GF(2^8) as HashiCorp Vault (and so sops) does it.

Used when a file has several key groups: each group wraps one share of the data key. A share is
the y-bytes followed by one x-byte; the field uses the AES polynomial 0x11B (spec section 9).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence


def _mul(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return r


def _inv(a: int) -> int:
    # a^254 = a^-1 in GF(2^8)
    r, p, e = 1, a, 254
    while e:
        if e & 1:
            r = _mul(r, p)
        p = _mul(p, p)
        e >>= 1
    return r


def combine(shares: Sequence[bytes]) -> bytes:
    """The secret from at least two shares (Lagrange interpolation at x = 0)."""
    if len(shares) < 2:
        raise ValueError("at least two shares are needed")
    length = len(shares[0])
    if length < 2 or any(len(s) != length for s in shares):
        raise ValueError("shares have different or too small lengths")
    xs = [s[-1] for s in shares]
    if len(set(xs)) != len(xs):
        raise ValueError("duplicate share")
    basis = []
    for i, xi in enumerate(xs):
        b = 1
        for j, xj in enumerate(xs):
            if i != j:
                b = _mul(b, _mul(xj, _inv(xi ^ xj)))
        basis.append(b)
    out = bytearray(length - 1)
    for k in range(length - 1):
        acc = 0
        for s, b in zip(shares, basis, strict=True):
            acc ^= _mul(s[k], b)
        out[k] = acc
    return bytes(out)


def split(secret: bytes, parts: int, threshold: int) -> list[bytes]:
    """``parts`` shares of ``secret``, any ``threshold`` of which recover it (x = 1..parts)."""
    if not 2 <= threshold <= parts <= 255:
        raise ValueError("need 2 <= threshold <= parts <= 255")
    shares = [bytearray(len(secret) + 1) for _ in range(parts)]
    for k, byte in enumerate(secret):
        coeffs = [byte] + [secrets.randbelow(256) for _ in range(threshold - 1)]
        for idx in range(parts):
            x = idx + 1
            y = 0
            for c in reversed(coeffs):  # Horner
                y = _mul(y, x) ^ c
            shares[idx][k] = y
    for idx in range(parts):
        shares[idx][-1] = idx + 1
    return [bytes(s) for s in shares]
