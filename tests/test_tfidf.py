"""Training's TF-IDF blocks from text analysed once are scikit-learn's own, to the bit: the
folds' matrices decide every setting, temperature and threshold the shipped model records."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CORPUS, TAXONOMY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix
from sklearn.base import clone

from agentpm.records.corpus import load_corpus
from agentpm.taxonomy import load_taxonomy


@pytest.fixture(scope="module")
def training():
    from agentpm.classifier import training

    return training


@pytest.fixture(scope="module")
def texts(training):
    taxonomy = load_taxonomy(TAXONOMY)
    data = training.training_set(load_corpus([CORPUS], taxonomy=taxonomy), taxonomy)
    # Every fourth report: enough for rare terms and varied rows, and quick to analyse.
    return data.texts[::4]


def same_matrix(ours, theirs) -> bool:
    """Equal in everything later arithmetic reads: type, shape, dtypes, and each array exactly
    (the order of a row's entries decides how its norm and dot products round)."""
    return (
        type(ours) is type(theirs)
        and ours.shape == theirs.shape
        and ours.dtype == theirs.dtype
        and ours.indices.dtype == theirs.indices.dtype
        and ours.indptr.dtype == theirs.indptr.dtype
        and np.array_equal(ours.indptr, theirs.indptr)
        and np.array_equal(ours.indices, theirs.indices)
        and np.array_equal(ours.data, theirs.data)
        and ours.has_sorted_indices == theirs.has_sorted_indices
    )


def vocabulary(vectorizer) -> list[str]:
    terms = [""] * len(vectorizer.vocabulary_)
    for term, column in vectorizer.vocabulary_.items():
        terms[column] = term
    return terms


def row_orders(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    shuffled = rng.permutation(count)
    return [
        (
            np.arange(0, count, 3),
            np.setdiff1d(np.arange(count), np.arange(0, count, 3)),
        ),  # sorted, as folds are
        (shuffled[: count // 2], shuffled[count // 2 :]),  # any order
        (np.concatenate([np.arange(40), np.arange(20)]), np.arange(40, 60)),  # a report twice
    ]


@pytest.mark.parametrize(
    ("analyzer", "ngram_range", "column"),
    [("word", (1, 2), 0), ("char_wb", (2, 5), 0), ("char_wb", (3, 4), 1)],
)
def test_a_fold_block_is_scikit_learns_to_the_bit(training, texts, analyzer, ngram_range, column):
    from agentpm.classifier.tfidf import AnalysedText

    analysed = AnalysedText(texts[:, column], training._vectorizer(analyzer, ngram_range))
    for train, test in row_orders(len(texts)):
        block, train_matrix = analysed.fit_transform(train)
        vectorizer = training._vectorizer(analyzer, ngram_range)
        assert same_matrix(train_matrix, vectorizer.fit_transform(texts[train, column]))
        assert same_matrix(analysed.transform(block, test), vectorizer.transform(texts[test, column]))
        assert np.array_equal(block.idf, vectorizer.idf_)
        assert analysed.fitted_terms(block) == vocabulary(vectorizer)


def test_stacked_folds_are_the_pipelines_features(training, texts):
    settings = {"C": 8.0, "context_weight": 0.5, "char_ngram_range": [2, 5], "real_weight": 1.0}
    features = training.Features(texts, [settings["char_ngram_range"]]).without_vocabulary()
    train, test = np.arange(0, len(texts), 2), np.arange(1, len(texts), 2)
    ours = training._stack(features.blocks(train, test, settings["char_ngram_range"]), 0.5)
    pipeline_features = training.build_pipeline(settings).named_steps["features"]
    assert isinstance(ours[0], csr_matrix)  # with its transpose kept, for the solver
    assert same_matrix(csr_matrix(ours[0]), pipeline_features.fit_transform(texts[train]))
    assert same_matrix(ours[1], pipeline_features.transform(texts[test]))


def test_the_transpose_kept_for_the_solver_changes_no_bit(training, texts):
    features = training.Features(texts, [(2, 5)]).without_vocabulary()
    rows = np.arange(0, len(texts), 2)
    with_transpose, _ = training._stack(features.blocks(rows, None, (2, 5)), 0.5)
    plain = csr_matrix(with_transpose)
    assert type(plain) is csr_matrix and np.array_equal(plain.data, with_transpose.data)
    product = np.random.default_rng(0).standard_normal((len(rows), 6))
    assert np.array_equal(product.T @ with_transpose, product.T @ plain)
    labels = np.arange(len(rows)) % 6
    weights = np.where(np.arange(len(rows)) % 3 == 0, 3.0, 1.0)
    for matrix in (with_transpose, plain):  # the estimator keeps the transpose of a plain one itself
        ours = training.TemperatureScaledLogisticRegression(C=32.0).fit(matrix, labels, sample_weight=weights)
        # scikit-learn's own solver on the plain matrix, with the estimator's settings
        reference = clone(ours.model_).fit(plain, labels, sample_weight=weights)
        assert np.array_equal(ours.coef_, reference.coef_)
        assert np.array_equal(ours.intercept_, reference.intercept_)


_tokens = st.lists(st.sampled_from("a b c ab ba abc x y zz ÄÖ é 1 2".split()), max_size=12).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=st.lists(_tokens, min_size=2, max_size=12), data=st.data())
def test_any_small_corpus_and_rows_give_scikit_learns_block(training, documents, data):
    """Few distinct terms: many repeats, terms at exactly min_df, reports without any."""
    from agentpm.classifier.tfidf import AnalysedText

    count = len(documents)
    train = np.array(data.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=20)))
    test = np.array(data.draw(st.lists(st.integers(0, count - 1), min_size=1, max_size=5)))
    texts = np.array(documents, dtype=object)
    for analyzer, ngram_range in (("word", (1, 2)), ("char_wb", (2, 3))):
        vectorizer = training._vectorizer(analyzer, ngram_range)
        analysed = AnalysedText(texts, training._vectorizer(analyzer, ngram_range))
        try:
            expected = vectorizer.fit_transform(texts[train])
        except ValueError as error:  # no terms at all, or none in two reports
            with pytest.raises(ValueError, match=str(error)[:20]):
                analysed.fit_transform(train)
            continue
        block, ours = analysed.fit_transform(train)
        assert same_matrix(ours, expected)
        assert same_matrix(analysed.transform(block, test), vectorizer.transform(texts[test]))


def test_settings_it_does_not_reproduce_are_refused(training):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from agentpm.classifier.tfidf import AnalysedText

    for vectorizer in (
        TfidfVectorizer(binary=True, sublinear_tf=True),
        TfidfVectorizer(max_df=0.9, sublinear_tf=True),
        TfidfVectorizer(min_df=0.1, sublinear_tf=True),
        TfidfVectorizer(sublinear_tf=False),
    ):
        with pytest.raises(ValueError, match="reproduce"):
            AnalysedText(["a b"], vectorizer)


def test_worker_copies_carry_no_term_strings(training, texts):
    features = training.Features(texts[:50], [(2, 5)])
    lean = features.without_vocabulary()
    for key, analysed in lean.analysed.items():
        assert analysed.vocabulary is None and features.analysed[key].vocabulary
        block, _ = analysed.fit_transform(np.arange(50))
        with pytest.raises(ValueError, match="no term strings"):
            analysed.fitted_terms(block)
