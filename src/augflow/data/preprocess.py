"""Preprocessing fitted on train only and inverted on output.

Model space is [0, 1]^D: numeric columns min-max scaled (by a declared range, the pixel domain,
or the train split's min and max), categorical columns one-hot encoded. The inverse maps model
rows back to the user's columns and units: numbers inside the scaling range (integers stay
integers), categories decoded by argmax, so a generated row always holds valid categories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from augflow.data.table import LABEL
from augflow.errors import AugflowError


@dataclass(frozen=True)
class Encoder:
    features: list[str]                 # the user's feature columns, in order
    numeric: list[str]
    low: np.ndarray                     # per numeric column
    high: np.ndarray
    integer: np.ndarray                 # per numeric column: round on the way back
    categories: dict[str, list[str]]    # per categorical column, sorted

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categories.values())

    @classmethod
    def fit(cls, train: pd.DataFrame, categorical: tuple[str, ...], declared: dict,
            fixed_range: tuple[float, float] | None = None) -> Encoder:
        """declared: data.columns from params ({col: ColumnRule}); fixed_range: a pixel domain
        that every numeric column shares (images)."""
        features = [c for c in train.columns if c != LABEL]
        numeric = [c for c in features if c not in categorical]
        x = train[numeric].to_numpy(dtype=np.float64)
        if fixed_range is not None:
            low = np.full(len(numeric), fixed_range[0])
            high = np.full(len(numeric), fixed_range[1])
            integer = np.zeros(len(numeric), bool)
        else:
            low, high = x.min(axis=0), x.max(axis=0)
            integer = np.all(x == np.round(x), axis=0)
        for i, col in enumerate(numeric):
            rule = declared.get(col)
            if rule is not None and rule.min is not None:
                low[i] = rule.min
            if rule is not None and rule.max is not None:
                high[i] = rule.max
        cats = {}
        for col in categorical:
            rule = declared.get(col)
            seen = sorted(train[col].astype(str).unique())
            cats[col] = sorted(rule.categories) if rule is not None and rule.categories else seen
        return cls(features, numeric, low, high, integer, cats)

    def to_dict(self) -> dict:
        return {"features": self.features, "numeric": self.numeric,
                "low": self.low.tolist(), "high": self.high.tolist(),
                "integer": self.integer.tolist(), "categories": self.categories}

    @classmethod
    def from_dict(cls, d: dict) -> Encoder:
        return cls(list(d["features"]), list(d["numeric"]), np.asarray(d["low"], np.float64),
                   np.asarray(d["high"], np.float64), np.asarray(d["integer"], bool),
                   {k: list(v) for k, v in d["categories"].items()})

    def transform(self, df: pd.DataFrame, file: str, unseen: str = "refuse") -> np.ndarray:
        """User rows -> model rows (float32 in [0, 1]); broken input names file and column.
        unseen: a category train never showed is refused ("refuse": our own outputs must hold
        train's levels) or encoded as no level, all zeros ("zeros": a val or test row of a level
        too rare for a small train split to hold, which validate let through)."""
        missing = [c for c in self.features if c not in df.columns]
        if missing:
            raise AugflowError(f"missing feature columns {missing[:5]}", file=file,
                               field=missing[0], rule="required")
        parts = []
        if self.numeric:
            for col in self.numeric:
                if not pd.api.types.is_numeric_dtype(df[col]):
                    raise AugflowError("non-numeric values in a numeric column", file=file,
                                       field=col, rule="numeric")
            x = df[self.numeric].to_numpy(dtype=np.float64)
            bad = ~np.isfinite(x)
            if bad.any():
                col = self.numeric[int(np.argwhere(bad)[0][1])]
                raise AugflowError("NaN or infinite values", file=file, field=col, rule="finite")
            span = self.high - self.low
            parts.append(np.clip((x - self.low) / np.where(span > 0, span, 1.0), 0.0, 1.0))
        for col, cats in self.categories.items():
            values = df[col].astype(str).to_numpy()
            idx = pd.Index(cats).get_indexer(values)
            if (idx < 0).any() and unseen != "zeros":
                raise AugflowError(f"unknown category {values[idx < 0][0]!r} (known: {cats[:10]})",
                                   file=file, field=col, rule="category seen in train or declared")
            onehot = np.zeros((len(df), len(cats)))
            known = idx >= 0
            onehot[np.flatnonzero(known), idx[known]] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32)

    def inverse(self, u: np.ndarray) -> pd.DataFrame:
        """Model rows -> a DataFrame in the user's columns (float32 numbers, str categories)."""
        u = np.asarray(u, dtype=np.float64)
        out: dict[str, np.ndarray] = {}
        n = len(self.numeric)
        if n:
            x = self.low + np.clip(u[:, :n], 0.0, 1.0) * (self.high - self.low)
            # integers: the nearest whole number inside the range (a declared bound such as 0.5
            # would otherwise round outside it, and check_values refuse our own output)
            whole = np.clip(np.round(x), np.ceil(self.low), np.floor(self.high))
            x = np.where(self.integer, whole, x)
            for i, col in enumerate(self.numeric):
                out[col] = x[:, i].astype(np.float32)
        pos = n
        for col, cats in self.categories.items():
            block = u[:, pos:pos + len(cats)]
            out[col] = np.asarray(cats, dtype=object)[block.argmax(axis=1)]
            pos += len(cats)
        return pd.DataFrame({c: out[c] for c in self.features})

    def check_values(self, df: pd.DataFrame, file: str) -> np.ndarray:
        """transform() for a table claiming to be in the user's units, which must also keep
        numbers inside the scaling range (the synthetic-table contract)."""
        u = self.transform(df, file)   # columns, types, finiteness, categories
        if not self.numeric:
            return u
        x = df[self.numeric].to_numpy(dtype=np.float64)
        tol = 1e-6 * np.maximum(np.abs(self.high - self.low), 1.0)
        outside = (x < self.low - tol) | (x > self.high + tol)
        if outside.any():
            i = int(np.argwhere(outside)[0][1])
            raise AugflowError(f"{int(outside[:, i].sum())} values outside the range "
                               f"[{self.low[i]:.6g}, {self.high[i]:.6g}]", file=file,
                               field=self.numeric[i], rule="value_range")
        return u

