"""Fake-profile detection from the interaction log alone: profiles that are outliers in how long
they are, how mainstream their items are, and how closely they copy other profiles.

Shilling profiles are made in bulk from a recipe, so they share what genuine users rarely share:
bandwagon and segment profiles are near copies of each other (very high similarity to their
nearest profiles), random and average ones pick items with no regard for what people consume
(unusually obscure), and minimal ones are short and mainstream. Each user gets three features:

* ``length``: log of the number of positive items;
* ``mainstream``: the mean ``log(1 + popularity)`` of those items;
* ``copying``: the mean Jaccard similarity to the :data:`NEIGHBOURS` most similar profiles
  (DegSim, Chirita et al. 2005).

Each is turned into a robust z-score (median and MAD over all users, so the fakes cannot shift
it much), and the user's suspicion is the sum of the three squares: for independent normal
features a chi-square with 3 degrees of freedom, whose 99.9th percentile is 16.3. Users over the
threshold are flagged with the reasons in words. The cost is one sparse users x users product,
done in blocks: fine for hundreds of thousands of users on one box, not for hundreds of millions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from embedder.recommend.interactions import Interaction

NEIGHBOURS = 5
DEFAULT_THRESHOLD = 20.0
REASON_Z = 3.0  # a feature this many robust deviations out is named as a reason
BLOCK = 512  # users per block of the similarity product


@dataclass
class Suspicion:
    """One flagged user: the score, the reasons in words, and the features behind them."""

    user: str
    score: float
    reasons: list[str]
    features: dict[str, float]

    def to_dict(self) -> dict:
        return asdict(self)


def _robust_z(values: np.ndarray) -> np.ndarray:
    median = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - median)))
    if scale <= 1e-12:  # more than half the users alike (Last.fm keeps 50 artists a user): use the spread
        scale = float(np.std(values))
    return (values - median) / scale if scale > 1e-12 else np.zeros_like(values)


def profile_features(events: list[Interaction]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Users (sorted) and their ``length``, ``mainstream`` and ``copying`` features."""
    from scipy.sparse import csr_matrix

    positive = sorted({(e.user, e.item) for e in events if e.weight > 0})
    users = sorted({u for u, _ in positive})
    items = sorted({i for _, i in positive})
    u_index = {u: n for n, u in enumerate(users)}
    i_index = {i: n for n, i in enumerate(items)}
    x = csr_matrix(
        (np.ones(len(positive)), ([u_index[u] for u, _ in positive], [i_index[i] for _, i in positive])),
        shape=(len(users), len(items)),
    )
    sizes = np.asarray(x.sum(axis=1)).ravel()
    popularity = np.asarray(x.sum(axis=0)).ravel()
    mainstream = (x @ np.log1p(popularity)) / np.maximum(sizes, 1)
    copying = np.zeros(len(users))
    k = min(NEIGHBOURS, max(len(users) - 1, 1))
    xt = x.T.tocsr()
    for start in range(0, len(users), BLOCK):
        block = slice(start, min(start + BLOCK, len(users)))
        shared = (x[block] @ xt).toarray()
        union = sizes[block][:, None] + sizes[None, :] - shared
        jaccard = np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)
        jaccard[np.arange(jaccard.shape[0]), np.arange(start, block.stop)] = 0.0  # not oneself
        copying[block] = np.sort(np.partition(jaccard, -k, axis=1)[:, -k:], axis=1).mean(axis=1)
    return users, {"length": np.log(np.maximum(sizes, 1)), "mainstream": mainstream, "copying": copying}


def find_suspicious(events: list[Interaction], threshold: float = DEFAULT_THRESHOLD) -> list[Suspicion]:
    """Users whose profiles are outliers (see the module's docstring), most suspicious first."""
    users, features = profile_features(events)
    if len(users) < 3:
        return []
    zs = {name: _robust_z(values) for name, values in features.items()}
    score = sum(z**2 for z in zs.values())
    flagged = []
    for n in np.flatnonzero(score > threshold):
        reasons = []
        if zs["copying"][n] > REASON_Z:
            reasons.append(f"profile nearly copies {NEIGHBOURS} others (similarity {features['copying'][n]:.2f})")
        if zs["mainstream"][n] > REASON_Z:
            reasons.append("only the most popular items")
        if zs["mainstream"][n] < -REASON_Z:
            reasons.append("items far more obscure than anyone else's")
        if zs["length"][n] < -REASON_Z:
            reasons.append(f"very short profile ({int(round(np.exp(features['length'][n])))} items)")
        if zs["length"][n] > REASON_Z:
            reasons.append(f"very long profile ({int(round(np.exp(features['length'][n])))} items)")
        if not reasons:
            reasons.append("unusual on several counts at once")
        flagged.append(
            Suspicion(
                user=users[n],
                score=round(float(score[n]), 3),
                reasons=reasons,
                features={
                    "items": int(round(np.exp(features["length"][n]))),
                    "mainstream": round(float(features["mainstream"][n]), 4),
                    "copying": round(float(features["copying"][n]), 4),
                    **{f"z_{name}": round(float(z[n]), 3) for name, z in zs.items()},
                },
            )
        )
    return sorted(flagged, key=lambda s: (-s.score, s.user))


def without_suspicious(events: list[Interaction], threshold: float = DEFAULT_THRESHOLD):
    """``events`` without the flagged users' events, and the flagged users (for the report)."""
    flagged = find_suspicious(events, threshold)
    quarantined = {s.user for s in flagged}
    return [e for e in events if e.user not in quarantined], flagged
