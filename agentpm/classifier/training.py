"""Training and evaluation with scikit-learn (imported only here, only by `model train|eval`).

One Pipeline: a ColumnTransformer of four TF-IDF blocks (word and char_wb n-grams over the
``cause`` and ``context`` channels of :mod:`agentpm.classifier.features`) feeding a balanced,
temperature-calibrated multinomial logistic regression, exported to a weights-only artefact.

What transfers to real reports decides every choice (DESIGN §7): folds are grouped by source
(a repository or site never sits on both sides), and the settings, the temperature and the
abstention threshold are all chosen on the out-of-fold scores of the reports modelled on
real public texts. The real-text test split (``split: test``) is never trained on or tuned on;
it is only scored, once the model is fitted, and its figures go into the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack, issparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline

import agentpm
from agentpm.classifier.features import channels, prose_word_count
from agentpm.classifier.predictor import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    WEIGHTS,
    load_model,
    save_npz,
    terms_blob,
    write_lookup,
)
from agentpm.classifier.provenance import HANDWRITTEN, group_of, in_test_split, is_modelled, register_of
from agentpm.classifier.tfidf import AnalysedText
from agentpm.errors import ModelError
from agentpm.records.corpus import Corpus
from agentpm.records.writing import atomic_write
from agentpm.stats import wilson
from agentpm.taxonomy import Taxonomy

RANDOM_STATE = 0
CV_FOLDS = 5
#: The search grid. Small on purpose: each point is a 5-fold fit of the whole pipeline.
#: ``real_weight`` is the sample weight of a report modelled on a real public text against a
#: hand-written one (1.0: the same).
GRID = {
    "C": (2.0, 8.0, 32.0),
    "context_weight": (0.5, 1.0),
    "char_ngram_range": ((2, 5),),
    "real_weight": (1.0, 3.0),
}
#: Below this many real-text reports the choices fall back to all out-of-fold scores.
MIN_REAL_FOR_SELECTION = 60
#: With at least this many of the user's own reports (`--add`), the choices are made on them.
MIN_USER_FOR_SELECTION = 20
#: ... and with at least this many, the temperature and threshold too (see calibration_mask).
MIN_USER_FOR_CALIBRATION = 150
#: The weights tried for the user's own reports when adapting (the other settings stay the
#: shipped model's: the search is over how much the user's reports should count).
USER_WEIGHTS = (1.0, 3.0, 10.0)
WORD_NGRAM_RANGE = (1, 2)
MIN_DF = 2
#: Fewer words of prose than this (beyond the title) and the model declines to guess.
MIN_WORDS = 12
#: Top two probabilities closer than this: "ambiguous".
MARGIN = 0.05
#: The labelled share the default threshold must reach (precision on what it labels).
TARGET_PRECISION = 0.95


# -- the estimator ------------------------------------------------------------------------


class TemperatureScaledLogisticRegression(ClassifierMixin, BaseEstimator):
    """Balanced multinomial logistic regression whose probabilities are softmax(scores / T).

    ``temperature`` is fitted on out-of-fold scores (see :func:`fit_temperature`) and then
    fixed, so fitting the pipeline is a single deterministic solve.
    """

    def __init__(self, C: float = 1.0, temperature: float = 1.0, random_state: int = RANDOM_STATE):
        self.C = C
        self.temperature = temperature
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None):
        # newton-cg: same optimum as lbfgs here, about four times faster on these sparse matrices.
        self.model_ = LogisticRegression(
            C=self.C,
            class_weight="balanced",
            solver="newton-cg",
            max_iter=1000,
            random_state=self.random_state,
        )
        if issparse(X) and X.format == "csr" and not isinstance(X, _CsrWithTranspose):
            X = _CsrWithTranspose(X)
        self.model_.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        self.coef_ = self.model_.coef_
        self.intercept_ = self.model_.intercept_
        return self

    def decision_function(self, X):
        return self.model_.decision_function(X)

    def predict_proba(self, X):
        return softmax(self.decision_function(X) / self.temperature)

    def predict(self, X):
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


class _CsrWithTranspose(csr_matrix):
    """A training matrix that also keeps its transpose in CSR form, for the solver's speed only.

    Nearly half of newton-cg's time goes to ``gradient.T @ X``, which scipy computes on the CSC
    view of ``X``: it scatters each report's entries over a long output vector. The CSR
    transpose gathers each output's entries in a row instead, in a third less time, with the
    same additions in the same order (by report, for each term), so the solution is the same
    to the bit. Every other operation is the plain CSR matrix's.
    """

    def __init__(self, matrix: csr_matrix):
        super().__init__(matrix)
        self.transposed = csr_matrix(matrix.T)

    def __rmatmul__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray) and other.ndim == 2:
            return (self.transposed @ other.T).T
        return super().__rmatmul__(other)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of softmax(scores / T) on held-out scores."""

    def nll(log_t: float) -> float:
        probabilities = softmax(scores / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, None))))

    result = minimize_scalar(
        nll, bounds=(np.log(0.02), np.log(50.0)), method="bounded", options={"xatol": 1e-6}
    )
    return round(float(np.exp(result.x)), 6)


# -- data ---------------------------------------------------------------------------------


@dataclass
class TrainingSet:
    texts: np.ndarray  # (n, 2) object array: cause, context
    labels: np.ndarray  # int indices into classes
    classes: list[str]
    words: np.ndarray
    paths: list[str]
    corpus_sha256: str
    files: int
    groups: np.ndarray  # source group (repository or site), or the file for hand-written reports
    registers: np.ndarray  # informal, writeup, record or hand-written
    real: np.ndarray  # modelled on a real public text
    secondary: list[frozenset[int]] = field(default_factory=list)  # human secondary labels, as class indices
    user: np.ndarray | None = None  # the user's own reports (`model train --add`)

    @property
    def users(self) -> np.ndarray:
        return self.user if self.user is not None else np.zeros(len(self.labels), dtype=bool)

    @property
    def selection_mask(self) -> np.ndarray:
        """The reports whose out-of-fold scores decide settings, temperature and threshold: the
        user's own when adapting, else those modelled on real texts, else all."""
        if self.users.sum() >= MIN_USER_FOR_SELECTION:
            return self.users
        return self.real if self.real.sum() >= MIN_REAL_FOR_SELECTION else np.ones_like(self.real)

    @property
    def calibration_mask(self) -> np.ndarray:
        """The reports whose out-of-fold scores set the temperature and the threshold: as
        :attr:`selection_mask`, but a few dozen of the user's own reports cannot carry a 95 %
        precision bound alone, so until there are enough they are pooled with the real-text ones."""
        if 0 < self.users.sum() < MIN_USER_FOR_CALIBRATION:
            return self.users | self.real
        return self.selection_mask

    def sample_weights(self, real_weight: float, user_weight: float = 1.0) -> np.ndarray:
        weights = np.where(self.real, float(real_weight), 1.0)
        return np.where(self.users, float(user_weight), weights)

    def subset(self, index: np.ndarray) -> TrainingSet:
        """The reports at ``index`` (a fold's training part, say)."""
        return TrainingSet(
            texts=self.texts[index],
            labels=self.labels[index],
            classes=self.classes,
            words=self.words[index],
            paths=[self.paths[i] for i in index],
            corpus_sha256=self.corpus_sha256,
            files=len(index),
            groups=self.groups[index],
            registers=self.registers[index],
            real=self.real[index],
            secondary=[self.secondary[i] for i in index] if self.secondary else [],
            user=self.users[index],
        )

    def joined(self, other: TrainingSet) -> TrainingSet:
        """This set followed by ``other``, whose reports are marked as the user's own."""
        return TrainingSet(
            texts=np.concatenate([self.texts, other.texts]),
            labels=np.concatenate([self.labels, other.labels]),
            classes=self.classes,
            words=np.concatenate([self.words, other.words]),
            paths=self.paths + other.paths,
            corpus_sha256=hashlib.sha256((self.corpus_sha256 + other.corpus_sha256).encode()).hexdigest(),
            files=self.files + other.files,
            groups=np.concatenate([self.groups, np.array([f"user:{path}" for path in other.paths])]),
            registers=np.concatenate([self.registers, other.registers]),
            real=np.concatenate([self.real, np.zeros(other.files, dtype=bool)]),
            secondary=self.secondary + other.secondary,
            user=np.concatenate([self.users, np.ones(other.files, dtype=bool)]),
        )


def training_set(
    corpus: Corpus,
    taxonomy: Taxonomy,
    root: Path | None = None,
    part: str = "train",
    every_category: bool | None = None,
) -> TrainingSet:
    """The labelled incidents of one part: ``train`` (all but the real-text test split), ``test``
    (the split only) or ``all``. ``every_category`` (default: for ``train``) requires enough
    reports of each category to cross-validate; a set that is only scored, or a user's own
    reports added to the corpus, need not cover them all."""
    keep = {"train": lambda i: not in_test_split(i), "test": in_test_split, "all": lambda i: True}[part]
    labelled = [incident for incident in corpus.incidents if incident.category and keep(incident)]
    if not labelled:
        raise ModelError("no labelled incidents (with a `category`) to train on; label some reports first")
    classes = list(taxonomy.ids)
    counts = {name: sum(1 for incident in labelled if incident.category == name) for name in classes}
    too_few = [name for name, count in counts.items() if count < CV_FOLDS]
    if too_few and (part == "train" if every_category is None else every_category):
        raise ModelError(
            f"every category needs at least {CV_FOLDS} labelled incidents to train and cross-validate; "
            f"too few for: {', '.join(too_few)}"
        )
    labelled.sort(key=lambda incident: str(incident.path))
    texts = np.empty((len(labelled), 2), dtype=object)
    for row, incident in enumerate(labelled):
        texts[row, 0], texts[row, 1] = channels(incident)
    digest = hashlib.sha256()
    for incident in labelled:
        shown = os.path.relpath(incident.path, root) if root and incident.path else str(incident.path)
        digest.update(shown.replace(os.sep, "/").encode("utf-8") + b"\0")
        digest.update(Path(incident.path).read_bytes() + b"\0")
    return TrainingSet(
        texts=texts,
        labels=np.array([classes.index(incident.category) for incident in labelled]),
        classes=classes,
        words=np.array([prose_word_count(incident) for incident in labelled]),
        paths=[str(incident.path) for incident in labelled],
        corpus_sha256=digest.hexdigest(),
        files=len(labelled),
        groups=np.array([group_of(incident) for incident in labelled]),
        registers=np.array([register_of(incident) for incident in labelled]),
        real=np.array([is_modelled(incident) for incident in labelled]),
        secondary=[
            frozenset(classes.index(other) for other in incident.secondary if other in classes)
            for incident in labelled
        ],
    )


# -- the pipeline -------------------------------------------------------------------------


def _vectorizer(analyzer: str, ngram_range: tuple[int, int]) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=ngram_range,
        min_df=MIN_DF,
        sublinear_tf=True,
        lowercase=True,
        dtype=np.float64,
    )


BLOCKS = (
    ("cause_word", "cause", "word"),
    ("cause_char", "cause", "char_wb"),
    ("context_word", "context", "word"),
    ("context_char", "context", "char_wb"),
)
#: Where each channel is in a training set's texts.
COLUMNS = {"cause": 0, "context": 1}
#: Fewer reports than this are analysed in this process: quicker than starting workers.
MIN_PARALLEL_ANALYSIS = 500


def build_pipeline(settings: dict[str, Any], temperature: float = 1.0) -> Pipeline:
    char_range = tuple(settings["char_ngram_range"])
    transformers = []
    weights = {}
    for name, channel, analyzer in BLOCKS:
        ngram_range = WORD_NGRAM_RANGE if analyzer == "word" else char_range
        transformers.append((name, _vectorizer(analyzer, ngram_range), COLUMNS[channel]))
        weights[name] = 1.0 if channel == "cause" else float(settings["context_weight"])
    features = ColumnTransformer(transformers, transformer_weights=weights, sparse_threshold=1.0)
    classifier = TemperatureScaledLogisticRegression(C=float(settings["C"]), temperature=temperature)
    return Pipeline([("features", features), ("classifier", classifier)])


def fit_pipeline(settings: dict[str, Any], data: TrainingSet, temperature: float = 1.0) -> Pipeline:
    """The pipeline fitted on a training set, real-text reports weighted as the settings say."""
    weights = data.sample_weights(settings.get("real_weight", 1.0))
    return build_pipeline(settings, temperature).fit(
        data.texts, data.labels, classifier__sample_weight=weights
    )


class Features:
    """The TF-IDF blocks of a set of reports, every text analysed once: each fold of the search
    and of the evaluation, and the final model, build their matrices from it, and get what
    :func:`build_pipeline`'s ColumnTransformer would give them (see :mod:`.tfidf`)."""

    def __init__(self, texts: np.ndarray, char_ranges: Iterable[Sequence[int]]):
        wanted: dict[tuple[str, tuple[int, int]], tuple[str, str]] = {}
        for char_range in char_ranges:
            for name, channel, analyzer in BLOCKS:
                wanted.setdefault((name, _ngram_range(analyzer, char_range)), (channel, analyzer))
        # On the workers the folds will use (their start-up overlaps the work), char n-grams
        # first: they take most of the time, and two of them keep two cores busy.
        keys = sorted(wanted, key=lambda key: wanted[key][1] == "word")
        jobs = [(texts[:, COLUMNS[wanted[key][0]]], _vectorizer(wanted[key][1], key[1])) for key in keys]
        workers = min(len(jobs), os.cpu_count() or 1) if len(texts) >= MIN_PARALLEL_ANALYSIS else 1
        analysed = list(_on_cores([(AnalysedText, job) for job in jobs], workers))
        self.analysed: dict[tuple[str, tuple[int, int]], AnalysedText] = dict(
            zip(keys, analysed, strict=True)
        )

    def without_vocabulary(self) -> Features:
        """A copy for worker processes (they need no term strings)."""
        lean = object.__new__(Features)
        lean.analysed = {key: text.without_vocabulary() for key, text in self.analysed.items()}
        return lean

    def blocks(self, train: np.ndarray, test: np.ndarray | None, char_range: Sequence[int]) -> list[tuple]:
        """Blocks fitted on the ``train`` rows: (channel, train matrix, test matrix or None,
        fitted block)."""
        blocks = []
        for name, channel, analyzer in BLOCKS:
            text = self.analysed[name, _ngram_range(analyzer, char_range)]
            fitted, train_matrix = text.fit_transform(train)
            blocks.append(
                (channel, train_matrix, None if test is None else text.transform(fitted, test), fitted)
            )
        return blocks


def _ngram_range(analyzer: str, char_range: Sequence[int]) -> tuple[int, int]:
    return WORD_NGRAM_RANGE if analyzer == "word" else (int(char_range[0]), int(char_range[1]))


def _stack(blocks, context_weight: float):
    """The blocks side by side, context ones weighted, as the pipeline's ColumnTransformer does
    (the training matrix with its transpose kept, once for all the fits on it: see
    :class:`_CsrWithTranspose`)."""
    train = hstack([m if channel == "cause" else m * context_weight for channel, m, *_ in blocks]).tocsr()
    train = _CsrWithTranspose(train)
    if blocks[0][2] is None:
        return train, None
    test = hstack([m if channel == "cause" else m * context_weight for channel, _, m, *_ in blocks]).tocsr()
    return train, test


def _grid_points(grid: dict[str, tuple] | None = None) -> list[dict[str, Any]]:
    grid = grid or GRID
    points = [dict(zip(grid, values, strict=True)) for values in product(*grid.values())]
    # Grouped by char range and context weight, so each fold vectorises and stacks once per pair.
    return sorted(points, key=lambda p: (tuple(p["char_ngram_range"]), p["context_weight"]))


def _fold_scores(
    features: Features,
    labels: np.ndarray,
    weights: list[np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    points: list[dict],
) -> list[np.ndarray]:
    """Decision scores on one test fold for every grid point (``weights``: each point's sample
    weights; each char range's blocks fitted once, each context weight stacked once)."""
    out: list[np.ndarray] = []
    blocks: dict[tuple, Any] = {}
    stacked: dict[tuple, Any] = {}
    for point, point_weights in zip(points, weights, strict=True):
        char_range = tuple(point["char_ngram_range"])
        if char_range not in blocks:
            blocks = {char_range: features.blocks(train, test, char_range)}
            stacked = {}
        key = (char_range, point["context_weight"])
        if key not in stacked:
            stacked[key] = _stack(blocks[char_range], point["context_weight"])
        train_matrix, test_matrix = stacked[key]
        model = TemperatureScaledLogisticRegression(C=point["C"])
        model.fit(train_matrix, labels[train], sample_weight=point_weights[train])
        out.append(model.decision_function(test_matrix))
    return out


def _parallel(tasks: list, progress: Callable[..., None] | None, what: str, per_fold: int = 1) -> list:
    """Run fold tasks (``per_fold`` of them to a fold, in a row) on every core, one BLAS thread
    each; results come back in task order, so runs are deterministic.

    Tasks go to the workers as they free up, not in rounds of one per core, so no core idles
    while another finishes its round. One BLAS thread wherever a task runs, because a fold's
    scores depend, in their last bits, on how many threads its BLAS splits a dot product over:
    in rounds, the workers' folds had one thread each but a last round of a single fold ran in
    this process with all of them (the search's fifth fold, on two cores), so figures could
    depend on the number of cores. For the shipped model the change moves that fold's scores
    by about 1e-13 and no figure in its manifest.
    """
    jobs = max(1, min(len(tasks), os.cpu_count() or 1))
    folds = len(tasks) // per_fold
    if progress:
        progress(f"{what}: {folds} folds on {jobs} cores", 0, len(tasks))
    results = []
    for output in _on_cores(tasks, jobs):
        results.append(output)
        if progress:
            progress(f"{what}: {len(results) // per_fold} of {folds} folds", len(results), len(tasks))
    return results


_TASKS: list = []  # set before the workers fork: they inherit the tasks, nothing is pickled to them


def _on_cores(tasks: list, workers: int) -> Iterator[Any]:
    """``function(*arguments)`` of each (function, arguments) task, in task order, on up to
    ``workers`` forked processes (see :mod:`agentpm.parallel`), one BLAS thread each.

    Forked workers inherit the tasks and whatever was loaded: no interpreter starts and no
    task's arguments (a fold's analysed text is tens of megabytes) are pickled to them, which
    were about a twentieth of a training's CPU time with joblib's spawned workers."""
    global _TASKS
    from agentpm.parallel import iter_in_order

    _TASKS = tasks
    try:
        yield from iter_in_order(_run_task, range(len(tasks)), minimum=2, workers=workers, chunksize=1)
    finally:
        _TASKS = []


def _run_task(index: int) -> Any:
    function, arguments = _TASKS[index]
    return _with_one_blas_thread(function, arguments)


def _with_one_blas_thread(function: Callable[..., Any], arguments: tuple) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return function(*arguments)


def grouped_folds(data: TrainingSet, seed: int = RANDOM_STATE, folds: int = CV_FOLDS) -> list:
    """Stratified folds that never split a source group (hand-written reports: one group each)."""
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    return list(splitter.split(data.texts, data.labels, data.groups))


def search(
    data: TrainingSet,
    progress: Callable[..., None] | None = None,
    grid: dict[str, tuple] | None = None,
    features: Features | None = None,
) -> dict[str, Any]:
    """Grouped k-fold over the grid; the settings whose out-of-fold scores on the selection
    reports (see :attr:`TrainingSet.selection_mask`) have the best macro-F1 win. Returns them,
    every score, and their out-of-fold scores. ``features``: the reports' text already analysed
    (its first rows being ``data``'s), else it is done here."""
    folds = grouped_folds(data)
    points = _grid_points(grid)
    if features is None:
        features = Features(data.texts, [point["char_ngram_range"] for point in points])
    lean = features.without_vocabulary()
    weights = [data.sample_weights(p.get("real_weight", 1.0), p.get("user_weight", 1.0)) for p in points]
    # Each fold in two tasks, half the grid each (a fold's blocks are built twice, a few percent
    # of its time): five folds on two cores would otherwise leave one core idle for a whole fold.
    middle = (len(points) + 1) // 2
    halves = [part for part in (range(0, middle), range(middle, len(points))) if len(part)]
    tasks = [
        (
            _fold_scores,
            (lean, data.labels, [weights[i] for i in half], train, test, [points[i] for i in half]),
        )
        for train, test in folds
        for half in halves
    ]
    fold_results = _parallel(tasks, progress, "settings search", per_fold=len(halves))
    scores = [np.zeros((len(data.labels), len(data.classes))) for _ in points]
    for task, ((_, test), half) in enumerate(product(folds, halves)):
        for index, block in zip(half, fold_results[task], strict=True):
            scores[index][test] = block
    judged = data.selection_mask
    results = []
    for index, point in enumerate(points):
        predicted = np.argmax(scores[index], axis=1)
        results.append(
            {
                **point,
                "char_ngram_range": list(point["char_ngram_range"]),
                "macro_f1_selection": round(
                    float(f1_score(data.labels[judged], predicted[judged], average="macro")), 6
                ),
                "macro_f1_all": round(float(f1_score(data.labels, predicted, average="macro")), 6),
            }
        )
    # Ties go to the simpler model: smaller C, then the earlier grid point.
    best = max(range(len(points)), key=lambda i: (results[i]["macro_f1_selection"], -points[i]["C"], -i))
    chosen = dict(points[best])
    chosen["char_ngram_range"] = list(chosen["char_ngram_range"])
    return {"chosen": chosen, "results": results, "oof_scores": scores[best], "folds": CV_FOLDS}


#: A secondary category is suggested only where at least this share of suggestions match a
#: human secondary label (out-of-fold); below it the model suggests none rather than noise.
SECONDARY_MIN_PRECISION = 0.5
SECONDARY_MIN_SUGGESTIONS = 10


def choose_secondary_threshold(probabilities: np.ndarray, data: TrainingSet) -> dict[str, Any]:
    """The lowest runner-up probability at which suggesting it as a secondary category is right
    at least half the time, judged on out-of-fold scores against the human ``secondary`` labels
    of the reports whose writers recorded them (the hand-written ones); None when no threshold
    gets there (the best precision seen is kept, so the model card can say so)."""
    annotated = np.where(np.array([register == HANDWRITTEN for register in data.registers]))[0]
    wanted_total = sum(1 for i in annotated if data.secondary[i])
    order = np.argsort(-probabilities, axis=1)
    best_seen = {"threshold": None, "precision": None, "recall": None}
    for threshold in np.round(np.arange(0.05, 0.51, 0.01), 2):
        suggested = [i for i in annotated if probabilities[i, order[i, 1]] >= threshold]
        if len(suggested) < SECONDARY_MIN_SUGGESTIONS:
            break
        right = sum(1 for i in suggested if int(order[i, 1]) in data.secondary[i])
        precision, recall = right / len(suggested), (right / wanted_total if wanted_total else 0.0)
        if best_seen["precision"] is None or precision > best_seen["precision"]:
            best_seen = {
                "threshold": float(threshold),
                "precision": round(precision, 4),
                "recall": round(recall, 4),
            }
        if precision >= SECONDARY_MIN_PRECISION:
            return {**best_seen, "n": len(annotated), "suggested_when_above": float(threshold)}
    return {
        "threshold": None,
        "best_precision_seen": best_seen["precision"],
        "at": best_seen["threshold"],
        "n": len(annotated),
        "note": f"no threshold reaches {SECONDARY_MIN_PRECISION:.0%} precision: no secondary is suggested",
    }


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    words: np.ndarray,
    target: float = TARGET_PRECISION,
    margin: float = MARGIN,
) -> dict[str, float]:
    """The lowest confidence threshold whose labelled reports are at least ``target`` correct.

    "At least" is read strictly: the lower end of the 95 % Wilson interval of the out-of-fold
    precision must reach the target, so the threshold does not rest on a handful of lucky folds.
    """
    top = probabilities.max(axis=1)
    ordered = np.sort(probabilities, axis=1)
    gap = ordered[:, -1] - ordered[:, -2]
    correct = np.argmax(probabilities, axis=1) == labels
    eligible = (words >= MIN_WORDS) & (gap >= margin)
    for threshold in np.round(np.arange(0.20, 0.991, 0.01), 2):
        covered = eligible & (top >= threshold)
        if covered.sum() and wilson(int(correct[covered].sum()), int(covered.sum()))[0] >= target:
            return {
                "confidence": float(threshold),
                "coverage": round(float(covered.mean()), 4),
                "precision": round(float(correct[covered].mean()), 4),
            }
    return {"confidence": 0.99, "coverage": 0.0, "precision": float("nan")}


# -- export -------------------------------------------------------------------------------


@dataclass
class FinalModel:
    """The model fitted on all labelled reports: its classifier, and each TF-IDF block's
    n-gram range, terms (by column), idf and weight, in :data:`BLOCKS` order."""

    classifier: TemperatureScaledLogisticRegression
    blocks: list[dict[str, Any]]


def fit_final(
    features: Features,
    settings: dict[str, Any],
    data: TrainingSet,
    temperature: float,
    test_rows: np.ndarray | None = None,
) -> tuple[FinalModel, np.ndarray | None]:
    """What :func:`fit_pipeline` fits on all of ``data`` (the first rows of ``features``), from
    the analysed text; and its probabilities for the ``test_rows`` of ``features``, if given."""
    char_range = settings["char_ngram_range"]
    fitted = features.blocks(np.arange(len(data.labels)), test_rows, char_range)
    train_matrix, test_matrix = _stack(fitted, float(settings["context_weight"]))
    classifier = TemperatureScaledLogisticRegression(C=float(settings["C"]), temperature=temperature)
    classifier.fit(
        train_matrix, data.labels, sample_weight=data.sample_weights(settings.get("real_weight", 1.0))
    )
    blocks = [
        {
            "ngram_range": _ngram_range(analyzer, char_range),
            "terms": features.analysed[name, _ngram_range(analyzer, char_range)].fitted_terms(block),
            "idf": block.idf,
            "weight": 1.0 if channel == "cause" else float(settings["context_weight"]),
        }
        for (name, channel, analyzer), (_, _, _, block) in zip(BLOCKS, fitted, strict=True)
    ]
    probabilities = None if test_matrix is None else classifier.predict_proba(test_matrix)
    return FinalModel(classifier, blocks), probabilities


def export(
    model: FinalModel,
    settings: dict[str, Any],
    data: TrainingSet,
    taxonomy: Taxonomy,
    thresholds: dict[str, float],
    cv: dict[str, Any],
    search_results: list[dict[str, Any]],
) -> tuple[dict, dict]:
    import scipy
    import sklearn

    classifier = model.classifier
    if list(classifier.classes_) != list(range(len(data.classes))):
        raise ModelError("training data is missing a category; every taxonomy id needs labelled examples")
    arrays: dict[str, np.ndarray] = {
        "coef": np.asarray(classifier.coef_, dtype=np.float64),
        "intercept": np.asarray(classifier.intercept_, dtype=np.float64),
    }
    blocks = []
    for (name, channel, analyzer), fitted in zip(BLOCKS, model.blocks, strict=True):
        terms = fitted["terms"]
        arrays[f"{name}.terms"] = terms_blob(terms)
        arrays[f"{name}.idf"] = np.asarray(fitted["idf"], dtype=np.float64)
        blocks.append(
            {
                "name": name,
                "channel": channel,
                "analyzer": analyzer,
                "ngram_range": list(fitted["ngram_range"]),
                "min_df": MIN_DF,
                "sublinear_tf": True,
                "weight": float(fitted["weight"]),
                "n_features": len(terms),
            }
        )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "classes": data.classes,
        "agentpm_version": agentpm.__version__,
        "versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "taxonomy": {
            "name": taxonomy.name,
            "version": taxonomy.version,
            "sha256": taxonomy.sha256,
            "ids": taxonomy.ids,
        },
        "corpus": {
            "sha256": data.corpus_sha256,
            "incidents": data.files,
            "per_class": {name: int((data.labels == index).sum()) for index, name in enumerate(data.classes)},
        },
        "features": {
            "channels": {
                "cause": "title, summary, root cause, contributing factors, fix, prevention, free prose",
                "context": "impact, detection, timeline, lessons, action items, systems, tools, "
                "other sections, code blocks",
            },
            "normalisation": "UUIDs, URLs, e-mails, IPs, timestamps, dates, hex ids, versions and numbers "
            "replaced by placeholders; HTTP 4xx/5xx codes kept as status tokens",
            "blocks": blocks,
        },
        "classifier": {
            "type": "multinomial logistic regression, balanced class weights, temperature-scaled softmax",
            "C": float(settings["C"]),
            "temperature": classifier.temperature,
            "random_state": RANDOM_STATE,
        },
        "selection": {
            "method": f"grouped stratified {CV_FOLDS}-fold cross-validation, macro-F1 on {cv['scored_on']}",
            "grid": {
                key: [list(v) if isinstance(v, tuple) else v for v in values] for key, values in GRID.items()
            },
            "chosen": settings,
            "results": search_results,
        },
        "thresholds": {
            "min_words": MIN_WORDS,
            "margin": MARGIN,
            "confidence": thresholds["confidence"],
            "target_precision": TARGET_PRECISION,
            "cv_coverage": thresholds["coverage"],
            "cv_precision": thresholds["precision"],
            "chosen_on": cv["scored_on"],
            "secondary": thresholds.get("secondary"),
        },
        "cv": cv,
    }
    return manifest, arrays


def trained_at() -> str:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat()


def train(
    corpus: Corpus,
    taxonomy: Taxonomy,
    output: Path,
    root: Path | None = None,
    progress: Callable[..., None] | None = None,
    own: Corpus | None = None,
    base_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Search, calibrate, fit and write a model folder; returns its manifest.

    With ``own`` (the user's labelled reports, `model train --add`), they join the corpus with
    a weight chosen by cross-validation grouped by file, judged on their own out-of-fold
    scores; the other settings stay ``base_settings`` (the shipped model's)."""
    started = time.perf_counter()
    data = training_set(corpus, taxonomy, root)
    grid = None
    if own is not None:
        data = data.joined(training_set(own, taxonomy, root, part="all", every_category=False))
        fixed = {
            key: (value if not isinstance(value, list) else tuple(value),)
            for key, value in (base_settings or {}).items()
            if key in GRID
        }
        grid = {**{key: GRID[key] for key in GRID}, **fixed, "user_weight": USER_WEIGHTS}
    test = _test_split(corpus, taxonomy, root)
    # The test split's text is analysed with the rest, for the final model to score it; the
    # folds never see it (their vocabularies come from their own training rows).
    texts = data.texts if test is None else np.concatenate([data.texts, test.texts])
    features = Features(texts, [point["char_ngram_range"] for point in _grid_points(grid)])
    found = search(data, progress, grid, features)
    settings = found["chosen"]
    judged = data.calibration_mask
    temperature = fit_temperature(found["oof_scores"][judged], data.labels[judged])
    probabilities = softmax(found["oof_scores"] / temperature)
    thresholds = choose_threshold(probabilities[judged], data.labels[judged], data.words[judged])
    secondary = choose_secondary_threshold(probabilities, data)
    thresholds["secondary"] = secondary["threshold"]
    predicted = np.argmax(probabilities, axis=1)
    cv = {
        "secondary": secondary,
        "macro_f1": round(float(f1_score(data.labels[judged], predicted[judged], average="macro")), 4),
        "ece": round(expected_calibration_error(probabilities[judged], data.labels[judged]), 4),
        "folds": CV_FOLDS,
        "grouped_by": "source group (repository or site); hand-written and the user's own reports one group each",
        "scored_on": _selection_text(data),
        "n": int(judged.sum()),
    }
    if progress:
        progress("fitting the final model on all labelled incidents")
    test_rows = None if test is None else np.arange(len(data.labels), len(texts))
    model, test_probabilities = fit_final(features, settings, data, temperature, test_rows)
    manifest, arrays = export(model, settings, data, taxonomy, thresholds, cv, found["results"])
    manifest["scores"] = _test_split_scores(test, test_probabilities, thresholds["confidence"])
    weights = save_npz(arrays)
    manifest["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    manifest["trained_at"] = trained_at()
    manifest["training_seconds"] = round(time.perf_counter() - started, 1)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write(output / WEIGHTS, weights)
    atomic_write(output / MANIFEST, json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    write_lookup(output)
    return manifest


def _selection_text(data: TrainingSet) -> str:
    if data.users.sum() >= MIN_USER_FOR_SELECTION:
        return f"out-of-fold scores of the user's own {int(data.users.sum())} labelled reports"
    if data.real.sum() >= MIN_REAL_FOR_SELECTION:
        return f"out-of-fold scores of the {int(data.real.sum())} reports modelled on real public texts"
    return f"out-of-fold scores of all {len(data.labels)} labelled reports (too few modelled on real texts)"


def _decided(probabilities: np.ndarray, words: np.ndarray, threshold: float) -> np.ndarray:
    """Which reports the model labels (rather than abstaining) at a threshold."""
    ordered = np.sort(probabilities, axis=1)
    return (ordered[:, -1] >= threshold) & (ordered[:, -1] - ordered[:, -2] >= MARGIN) & (words >= MIN_WORDS)


def _test_split(corpus: Corpus, taxonomy: Taxonomy, root: Path | None) -> TrainingSet | None:
    """The real-text test split, if the corpus has one."""
    try:
        return training_set(corpus, taxonomy, root, part="test")
    except ModelError:
        return None


def _test_split_scores(
    test: TrainingSet | None, probabilities: np.ndarray | None, threshold: float
) -> dict[str, Any]:
    """The fitted model on the real-text test split (measured only, never used for a choice)."""
    if test is None or probabilities is None:
        return {}
    decided = _decided(probabilities, test.words, threshold)
    found = score("real-text test split", test.labels, probabilities, decided, test.classes, rounds=500)
    return {
        "real-text test split": {
            "n": found.n,
            "macro_f1": found.macro_f1,
            "macro_f1_95ci": list(found.interval),
            "coverage": found.coverage,
            "precision": found.precision_at_threshold,
            "ece": found.ece,
        }
    }


# -- evaluation ---------------------------------------------------------------------------


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE of the top-class probability, equal-width bins."""
    top = probabilities.max(axis=1)
    correct = (np.argmax(probabilities, axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=False):
        inside = (top > low) & (top <= high) if low > 0 else (top >= low) & (top <= high)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - top[inside].mean())
    return float(total)


def bootstrap_interval(
    labels: np.ndarray, predicted: np.ndarray, rounds: int = 1000, seed: int = RANDOM_STATE
):
    rng = np.random.default_rng(seed)
    n = len(labels)
    classes = int(max(labels.max(), predicted.max())) + 1
    values = []
    for _ in range(rounds):
        sample = rng.integers(0, n, n)
        values.append(macro_f1(labels[sample], predicted[sample], classes))
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def macro_f1(labels: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """``f1_score(labels, predicted, average="macro")`` for class indices below ``classes``, to
    the bit: the same counts and the same float operations (per class present in either,
    2·tp / (true + predicted), then numpy's nanmean), without its input checks, which made a
    bootstrap of a thousand rounds take seconds."""
    true_sum = np.bincount(labels, minlength=classes)
    predicted_sum = np.bincount(predicted, minlength=classes)
    true_positives = np.bincount(labels[labels == predicted], minlength=classes)
    present = (true_sum + predicted_sum) > 0
    denominator = true_sum[present].astype(np.float64) + predicted_sum[present].astype(np.float64)
    return float(np.nanmean(2 * true_positives[present].astype(np.float64) / denominator))


@dataclass
class Scores:
    """Everything `model eval` reports for one predictor on one set of incidents."""

    name: str
    macro_f1: float
    interval: tuple[float, float]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    kappa: float
    ece: float | None
    coverage: float
    precision_at_threshold: float | None
    n: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n": self.n,
            "macro_f1": self.macro_f1,
            "macro_f1_95ci": list(self.interval),
            "per_class": self.per_class,
            "confusion_matrix": self.confusion,
            "cohen_kappa": self.kappa,
            "ece": self.ece,
            "coverage_at_threshold": self.coverage,
            "precision_at_threshold": self.precision_at_threshold,
            **self.extra,
        }


def score(
    name: str,
    labels: np.ndarray,
    probabilities: np.ndarray,
    labelled: np.ndarray,
    classes: list[str],
    calibrated: bool = True,
    rounds: int = 1000,
) -> Scores:
    predicted = np.argmax(probabilities, axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=list(range(len(classes))), zero_division=0
    )
    per_class = {
        classes[i]: {
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i in range(len(classes))
    }
    correct = predicted == labels
    return Scores(
        name=name,
        n=len(labels),
        macro_f1=round(
            float(
                f1_score(
                    labels, predicted, average="macro", labels=list(range(len(classes))), zero_division=0
                )
            ),
            4,
        ),
        interval=bootstrap_interval(labels, predicted, rounds),
        per_class=per_class,
        confusion=confusion_matrix(labels, predicted, labels=list(range(len(classes)))).tolist(),
        kappa=round(float(cohen_kappa_score(labels, predicted)), 4),
        ece=round(expected_calibration_error(probabilities, labels), 4) if calibrated else None,
        coverage=round(float(labelled.mean()), 4),
        precision_at_threshold=round(float(correct[labelled].mean()), 4) if labelled.any() else None,
    )


class KeywordBaseline:
    """Counts each category's own words from the taxonomy (name, description, scenarios,
    prevention, impact, labelling notes), weighted by how specific they are to it."""

    STOP = set(
        """a about after again against all also an and any are as at be because been before being both but by
    can cannot could did do does doing down each even every few for from further had has have having how if in into is
    it its itself just more most no nor not of off on once only or other out over own same should so some such than that
    the their them then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your our us one two per label here instead even when whose""".split()
    )

    def __init__(self, taxonomy: Taxonomy):
        import re

        self.classes = taxonomy.ids
        self._token = re.compile(r"[a-z][a-z-]{2,}")
        vocab: list[set[str]] = []
        for category in taxonomy.categories:
            text = " ".join(
                [
                    category.name,
                    category.description,
                    category.typical_impact,
                    *category.scenarios,
                    *category.prevention,
                    *category.labelling_notes,
                ]
            ).lower()
            vocab.append({token for token in self._token.findall(text) if token not in self.STOP})
        spread: dict[str, int] = {}
        for words in vocab:
            for word in words:
                spread[word] = spread.get(word, 0) + 1
        self.weights = [{word: 1.0 / spread[word] for word in words if spread[word] <= 2} for words in vocab]

    def scores(self, texts: Sequence[tuple[str, str]]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.classes)))
        for row, (cause, context) in enumerate(texts):
            tokens = self._token.findall((cause + " " + context).lower())
            for column, weights in enumerate(self.weights):
                out[row, column] = sum(weights.get(token, 0.0) for token in tokens)
        return out

    def probabilities(self, texts: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """(shares of keyword score, whether any keyword matched at all)."""
        raw = self.scores(texts)
        totals = raw.sum(axis=1, keepdims=True)
        matched = totals[:, 0] > 0
        shares = np.where(totals > 0, raw / np.where(totals > 0, totals, 1), 1.0 / len(self.classes))
        return shares, matched


def _outer_fold(
    data: TrainingSet,
    features: Features,
    settings: dict[str, Any],
    train_index: np.ndarray,
    test_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One evaluation fold, done as training does it: temperature and threshold from grouped
    inner out-of-fold scores of the real-text reports of the training part, then predict.
    Every fit is :func:`fit_pipeline`'s, from the analysed text (``features``, rows as ``data``)."""
    part = data.subset(train_index)
    inner_scores = np.zeros((len(train_index), len(data.classes)))
    for inner_train, inner_test in grouped_folds(part, folds=3):
        fitted, test_matrix = _fit_rows(
            features, settings, data, train_index[inner_train], train_index[inner_test]
        )
        inner_scores[inner_test] = fitted.decision_function(test_matrix)
    judged = part.calibration_mask
    temperature = fit_temperature(inner_scores[judged], part.labels[judged])
    probabilities = softmax(inner_scores / temperature)
    threshold = choose_threshold(probabilities[judged], part.labels[judged], part.words[judged])["confidence"]
    fitted, test_matrix = _fit_rows(features, settings, data, train_index, test_index, temperature)
    probabilities = fitted.predict_proba(test_matrix)
    return probabilities, _decided(probabilities, data.words[test_index], threshold)


def _fit_rows(
    features: Features,
    settings: dict[str, Any],
    data: TrainingSet,
    train: np.ndarray,
    test: np.ndarray,
    temperature: float = 1.0,
) -> tuple[TemperatureScaledLogisticRegression, Any]:
    """``fit_pipeline(settings, data.subset(train), temperature)``'s classifier, and the
    ``test`` rows as its features step would give them to it."""
    train_matrix, test_matrix = _stack(
        features.blocks(train, test, settings["char_ngram_range"]), float(settings["context_weight"])
    )
    classifier = TemperatureScaledLogisticRegression(C=float(settings["C"]), temperature=temperature)
    weights = data.sample_weights(settings.get("real_weight", 1.0))[train]
    return classifier.fit(train_matrix, data.labels[train], sample_weight=weights), test_matrix


REGISTER_NAMES = {"informal": "issues, PRs, chat", "writeup": "write-ups", "record": "curator records"}


def _score_parts(
    prefix: str, what: str, data: TrainingSet, probabilities: np.ndarray, decided: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Scores of the real-text reports, then of each register, then of the hand-written ones."""
    parts: dict[str, dict[str, Any]] = {}
    masks = [("real", "all reports modelled on public texts", data.real)]
    masks += [(key, name, data.registers == key) for key, name in REGISTER_NAMES.items()]
    masks.append(("handwritten", "hand-written", data.registers == HANDWRITTEN))
    for key, name, mask in masks:
        if mask.sum() >= 10:
            parts[f"{prefix}_{key}"] = score(
                f"{what}: {name}", data.labels[mask], probabilities[mask], decided[mask], data.classes
            ).to_dict()
    return parts


def applied(model: Any, data: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
    """A shipped model's probabilities for a set's reports, and which of them it labels rather
    than abstaining on (its own thresholds, as `classify` applies them)."""
    probabilities = model.predict_texts(list(map(tuple, data.texts)))
    decided = np.array(
        [
            model.decide(row, int(words))[0] is not None
            for row, words in zip(probabilities, data.words, strict=True)
        ]
    )
    return probabilities, decided


def evaluate(
    corpus: Corpus,
    taxonomy: Taxonomy,
    model_path: Path,
    ood: Corpus | None = None,
    repeats: int = 2,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Real text first: the model as shipped on the real-text test split (never trained or tuned
    on), then repeated grouped k-fold of its recorded settings on the training part (temperature
    and threshold refitted inside every fold as training does), per register, the hand-written
    part, a keyword baseline, and an out-of-distribution set."""
    model = load_model(model_path)
    model.check_taxonomy(taxonomy)
    settings = model.manifest["selection"]["chosen"]
    data = training_set(corpus, taxonomy)
    baseline = KeywordBaseline(taxonomy)
    result: dict[str, Any] = {
        "model": {
            "path": str(model_path),
            "hash": model.hash,
            "settings": settings,
            "threshold": model.confidence_threshold,
            "temperature": model.temperature,
        },
        "method": f"The shipped model on the real-text test split; {repeats}x repeated grouped stratified "
        f"{CV_FOLDS}-fold cross-validation of the training part (folds never split a repository or site; "
        "temperature and threshold refitted on grouped inner folds); 95% intervals by bootstrap over reports",
        "classes": data.classes,
    }
    try:
        test = training_set(corpus, taxonomy, part="test")
    except ModelError:
        test = None
    if test is not None:
        probabilities, decided = applied(model, test)
        result.update(
            _score_parts("test", "shipped model on the real-text test split", test, probabilities, decided)
        )
        shares, matched = baseline.probabilities(list(map(tuple, test.texts)))
        result["test_keyword_baseline"] = score(
            "keyword baseline on the real-text test split", test.labels, shares, matched, data.classes
        ).to_dict()
    splits = [fold for seed in range(repeats) for fold in grouped_folds(data, seed=RANDOM_STATE + seed)]
    features = Features(data.texts, [settings["char_ngram_range"]]).without_vocabulary()
    outcomes = _parallel(
        [
            (_outer_fold, (data, features, settings, train_index, test_index))
            for train_index, test_index in splits
        ],
        progress,
        "evaluation",
    )
    summed = np.zeros((len(data.labels), len(data.classes)))
    votes = np.zeros(len(data.labels))
    for (_, test_index), (probabilities, decided_now) in zip(splits, outcomes, strict=True):
        summed[test_index] += probabilities
        votes[test_index] += decided_now
    probabilities, decided = summed / repeats, votes / repeats >= 0.5
    result.update(_score_parts("cv", "grouped cross-validation", data, probabilities, decided))
    result["secondary"] = _secondary_scores(probabilities, data, model.secondary_threshold)
    shares, matched = baseline.probabilities(list(map(tuple, data.texts)))
    result["cv_keyword_baseline"] = score(
        "keyword baseline on the training part", data.labels, shares, matched, data.classes
    ).to_dict()
    if ood is not None and len(ood.incidents):
        result.update(_ood_scores(ood, model, baseline, taxonomy))
    result["order"] = [key for key in result if isinstance(result[key], dict) and "macro_f1" in result[key]]
    result["headline"] = (
        "test_real" if "test_real" in result else "cv_real" if "cv_real" in result else "cv_handwritten"
    )
    return result


def _secondary_scores(
    probabilities: np.ndarray, data: TrainingSet, threshold: float | None
) -> dict[str, Any]:
    """Precision and recall of the suggested secondary category against the human secondary
    labels (out-of-fold, hand-written reports: the ones whose writers recorded secondaries)."""
    if threshold is None:
        return {"threshold": None, "note": "the model suggests no secondary category"}
    suggested = true_positive = wanted_total = 0
    order = np.argsort(-probabilities, axis=1)
    for i in np.where(data.registers == HANDWRITTEN)[0]:
        runner_up = int(order[i, 1])
        wanted_total += bool(data.secondary[i])
        if probabilities[i, runner_up] >= threshold:
            suggested += 1
            true_positive += runner_up in data.secondary[i]
    return {
        "threshold": threshold,
        "suggested": suggested,
        "precision": round(true_positive / suggested, 4) if suggested else None,
        "recall": round(true_positive / wanted_total, 4) if wanted_total else None,
        "scored_on": "grouped out-of-fold scores of the hand-written reports against their human secondary labels",
    }


def evaluate_on(corpus: Corpus, taxonomy: Taxonomy, model_paths: Sequence[Path]) -> dict[str, Any]:
    """Each model on labelled reports it was not trained on (`model eval --on DIR`): macro-F1
    with an interval, per class, confusion, calibration, coverage and precision at its
    threshold; several models side by side on the same reports."""
    data = training_set(corpus, taxonomy, part="all", every_category=False)
    result: dict[str, Any] = {
        "method": f"each model applied as shipped to {data.files} labelled reports it was not trained on; "
        "95% intervals by bootstrap over reports",
        "classes": data.classes,
        "order": [],
    }
    for number, model_path in enumerate(model_paths, 1):
        model = load_model(model_path)
        model.check_taxonomy(taxonomy)
        probabilities, decided = applied(model, data)
        key = f"model_{number}"
        result[key] = score(
            f"model {model.hash} ({model_path})", data.labels, probabilities, decided, data.classes
        ).to_dict()
        result["order"].append(key)
        result.setdefault("model", {"path": str(model_path), "hash": model.hash})
    result["headline"] = result["order"][-1]
    return result


def _ood_scores(ood: Corpus, model: Any, baseline: KeywordBaseline, taxonomy: Taxonomy) -> dict[str, Any]:
    data = training_set(ood, taxonomy, part="all", every_category=False)
    probabilities, decided = applied(model, data)
    shares, matched = baseline.probabilities(list(map(tuple, data.texts)))
    return {
        "ood": score(
            "shipped model on the OOD set", data.labels, probabilities, decided, data.classes
        ).to_dict(),
        "ood_keyword_baseline": score(
            "keyword baseline on the OOD set", data.labels, shares, matched, data.classes
        ).to_dict(),
    }


def training_summary(manifest: dict[str, Any], output: Path) -> str:
    """What `model train` prints when it is done."""
    chosen = manifest["selection"]["chosen"]
    thresholds, cv = manifest["thresholds"], manifest["cv"]
    settings = (
        f"C={chosen['C']}, context weight={chosen['context_weight']}, "
        f"char n-grams={tuple(chosen['char_ngram_range'])}, real-text weight={chosen.get('real_weight', 1.0)}"
    )
    lines = [
        f"wrote {output} (model {load_model(output).hash})",
        f"  trained on {manifest['corpus']['incidents']} labelled incidents; {settings}",
        f"  grouped cross-validation on the {cv['scored_on']}: macro-F1 {cv['macro_f1']:.3f}, "
        f"ECE {cv['ece']:.3f}, temperature {manifest['classifier']['temperature']:.3f}",
        f"  threshold {thresholds['confidence']:.2f}: labels {thresholds['cv_coverage']:.1%} of them at "
        f"{thresholds['cv_precision']:.1%} precision",
    ]
    for name, figures in (manifest.get("scores") or {}).items():
        low, high = figures["macro_f1_95ci"]
        lines.append(
            f"  {name} (never trained or tuned on, n={figures['n']}): macro-F1 {figures['macro_f1']:.3f} "
            f"({low:.3f}-{high:.3f}); labels {figures['coverage']:.1%}, "
            f"{(figures['precision'] or 0):.1%} of them correct"
        )
    return "\n".join(lines) + "\n"
