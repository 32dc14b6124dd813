"""Small learned models shared by the pipeline, and the folds they are cross-validated on.

Everything learned here is a standardized linear score (fusion weights, the second-stage
reranker, the answer decision, the category tagger's regressions) fitted by L2 logistic
regression, stored as plain numbers in TOML beside the code, never pickled.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method: (weights, intercept).

    Minimizes c * sum(w_i * log loss_i) + |w|^2 / 2 with the intercept unpenalized (the objective
    of scikit-learn's LogisticRegression, which the project does not depend on). A few thousand
    rows and up to a few hundred columns: each Newton step is one small linear solve.
    """
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    target = y.astype(np.float64)
    weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    penalty = np.ones(d + 1)
    penalty[-1] = 1e-8  # keeps the system solvable when every label is negative
    theta = np.zeros(d + 1)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = c * design.T @ (weight * (p - target)) + penalty * theta
        hessian = c * (design.T * (weight * p * (1 - p))) @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return theta[:-1], float(theta[-1])


@dataclass(frozen=True)
class LinearModel:
    """score = intercept + weights . (x - mean) / scale; probability = sigmoid(score)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    def score(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - np.array(self.mean)) / np.array(self.scale)
        return self.intercept + z @ np.array(self.weights)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.score(x), -30, 30)))

    def to_table(self) -> dict:
        return {"features": list(self.features), "mean": [round(v, 6) for v in self.mean],
                "scale": [round(v, 6) for v in self.scale],
                "weights": [round(v, 6) for v in self.weights], "intercept": round(self.intercept, 6)}

    @classmethod
    def from_table(cls, table: dict) -> "LinearModel":
        model = cls(features=tuple(table["features"]), mean=tuple(map(float, table["mean"])),
                    scale=tuple(map(float, table["scale"])), weights=tuple(map(float, table["weights"])),
                    intercept=float(table["intercept"]))
        if not len(model.features) == len(model.mean) == len(model.scale) == len(model.weights):
            raise ValueError("features, mean, scale and weights differ in length")
        return model


def fit_linear(x: np.ndarray, y: np.ndarray, features: Sequence[str], c: float,
               sample_weight: np.ndarray | None = None) -> LinearModel:
    """A logistic regression on standardized features (so one C suits every feature's units)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    scale = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    scale = np.where(scale > 1e-9, scale, 1.0)
    weights, intercept = fit_logistic((x - mean) / scale, y, c, sample_weight)
    return LinearModel(tuple(features), tuple(mean.tolist()), tuple(scale.tolist()),
                       tuple(weights.tolist()), intercept)


def stratified_folds(groups: Sequence[str], k: int, seed: int = 13) -> list[int]:
    """A fold number per item; each group (a state, a kind) spread evenly over the folds."""
    rng = random.Random(seed)
    fold_of = [0] * len(groups)
    by_group: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        by_group.setdefault(group, []).append(i)
    offset = 0
    for group in sorted(by_group):
        members = by_group[group]
        rng.shuffle(members)
        for j, i in enumerate(members):
            fold_of[i] = (offset + j) % k
        offset += len(members)
    return fold_of
