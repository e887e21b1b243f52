"""The evaluation's bootstrap intervals: its macro-F1 is scikit-learn's, to the bit."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from agentpm.classifier.training import bootstrap_interval, macro_f1

_pairs = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
    )
)


def sklearn_macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes predicted but absent, and the like
        return f1_score(labels, predicted, average="macro")


@settings(max_examples=300, deadline=None)
@given(pairs=_pairs)
def test_macro_f1_is_scikit_learns_to_the_bit(pairs):
    labels, predicted = (np.array(values) for values in pairs)
    assert macro_f1(labels, predicted, 6) == sklearn_macro_f1(labels, predicted)


def test_bootstrap_interval_is_the_one_scikit_learn_gives():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 6, 274)
    predicted = np.where(rng.random(274) < 0.9, labels, rng.integers(0, 6, 274))
    # The interval as computed before, with f1_score itself on the same resamples.
    draws = np.random.default_rng(0)
    values = []
    for _ in range(500):
        sample = draws.integers(0, 274, 274)
        values.append(sklearn_macro_f1(labels[sample], predicted[sample]))
    low, high = np.percentile(values, [2.5, 97.5])
    assert bootstrap_interval(labels, predicted, rounds=500) == (round(float(low), 4), round(float(high), 4))
