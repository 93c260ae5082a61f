"""Comparison metrics, framework-neutral (numpy in, floats out)."""
from __future__ import annotations

import numpy as np


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise distance in units in the last place between two float32 arrays.

    Maps each float's bits onto a monotonic integer line (negative floats mirrored),
    so adjacent floats differ by 1 and +0 / -0 coincide.
    """
    def ordered(x):
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, np.int64(-(2**31)) - i, i)
    return np.abs(ordered(a) - ordered(b))


def max_ulp(a: np.ndarray, b: np.ndarray) -> int:
    return int(ulp_distance(a, b).max()) if a.size else 0


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def relative(got: np.ndarray, ref: np.ndarray) -> float:
    """max |got - ref| / max |ref|: one number, never a sum of errors."""
    scale = float(np.max(np.abs(ref.astype(np.float64)))) if ref.size else 0.0
    return max_abs(got, ref) / scale if scale > 0 else max_abs(got, ref)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denom = np.linalg.norm(a64) * np.linalg.norm(b64)
    return float(a64 @ b64 / denom) if denom > 0 else 1.0
