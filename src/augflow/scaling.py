"""Feature scaling to [0, 1] with the domain declared by the data's schema, and its inverse."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RangeScaler:
    low: float
    high: float

    @classmethod
    def from_schema(cls, schema: dict) -> "RangeScaler":
        lo, hi = schema["value_range"]
        return cls(float(lo), float(hi))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0).astype(np.float32)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return (self.low + np.asarray(u, dtype=np.float64) * (self.high - self.low)).astype(np.float32)
