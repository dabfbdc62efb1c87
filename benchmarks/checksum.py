"""The exact checksum of the benchmark product, in closed form.

A[i][j] = ((i·n+j) mod 7)·½ and B[i][j] = ((i·n+j) mod 5)·¼, so
Σ_ij C[i][j] = Σ_k (Σ_i A[i][k]) · (Σ_j B[k][j]), computed in O(n) with
integers (the residues of i·n repeat with period 7, those of k·n+j with 5).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache


def _residue_counts(n: int, modulus: int) -> list[int]:
    """How many i in [0, n) have i·n ≡ r (mod modulus), for each r."""
    counts = [0] * modulus
    for r in range(modulus):
        counts[(r * n) % modulus] += len(range(r, n, modulus))
    return counts


@cache
def exact_checksum(n: int) -> Fraction:
    """Σ of every entry of A·B for the benchmark matrices of size n."""
    if n < 1:
        raise ValueError("n must be at least 1")
    a_counts = _residue_counts(n, 7)
    cycles, rest = divmod(n, 5)
    total = 0
    for k in range(n):
        column_a = sum(count * ((r + k) % 7) for r, count in enumerate(a_counts))  # Σ_i 2·A[i][k]
        start = (k * n) % 5
        row_b = cycles * 10 + sum((start + j) % 5 for j in range(rest))  # Σ_j 4·B[k][j]
        total += column_a * row_b
    return Fraction(total, 8)


def expected(n: int) -> float:
    """The checksum as the float a server returns (exact for every n ≤ 5000)."""
    return float(exact_checksum(n))
