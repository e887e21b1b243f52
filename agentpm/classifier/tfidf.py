"""TF-IDF blocks for many folds of the same reports, from text analysed once (training only).

Cross-validation fits the same TfidfVectorizer blocks again and again on subsets of the same
reports, and analysing the text into word and char n-grams was a large part of that work
(most of it in evaluation, where each fold fits a single setting four times). Here each
report is analysed once, into its terms and their counts, and a fold's block is then built
with numpy. It is the same matrix, to the bit, as ``TfidfVectorizer.fit_transform`` on the
fold's texts and ``.transform`` on the held-out ones: the same columns, and the same order of
entries within each row, which decides the rounding of the l2 norm and of every product the
solver computes, so the settings, temperature and threshold chosen do not move.
tests/test_tfidf.py holds it to scikit-learn's own output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer


@dataclass
class FittedBlock:
    """One block fitted on some reports: the column of each term (-1: not in the vocabulary),
    and the idf, as the fitted vectorizer has them."""

    columns: np.ndarray
    transformer: TfidfTransformer

    @property
    def idf(self) -> np.ndarray:
        return self.transformer.idf_


class AnalysedText:
    """One text column analysed by one vectorizer: each report's distinct terms and their
    counts, in the order the analyzer first yields them (CountVectorizer numbers the terms of
    the reports it is fitted on in that order, and the order of a row's entries follows)."""

    def __init__(self, documents: Sequence[str], vectorizer: TfidfVectorizer):
        self._check_supported(vectorizer)
        self.min_df = int(vectorizer.min_df)
        analyze = vectorizer.build_analyzer()
        ids: dict[str, int] = {}
        terms: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for document in documents:
            # A Counter keeps its keys in order of first appearance.
            counter = Counter(analyze(document))
            terms.extend([ids.setdefault(term, len(ids)) for term in counter])
            counts.extend(counter.values())
            indptr.append(len(terms))
        #: every term met, by id (ids number the terms in order of first appearance)
        self.vocabulary: list[str] | None = list(ids)
        self.terms = np.asarray(terms, dtype=np.int32)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        # A fitted vectorizer's columns are its terms in sorted order: each term's place in it.
        order = sorted(range(len(self.vocabulary)), key=self.vocabulary.__getitem__)
        self.sorted_rank = np.empty(len(order), dtype=np.int64)
        self.sorted_rank[order] = np.arange(len(order))

    @staticmethod
    def _check_supported(vectorizer: TfidfVectorizer) -> None:
        """Only the settings training uses are reproduced; anything else must go through
        scikit-learn itself."""
        params = vectorizer.get_params()
        wanted = {
            "input": "content",
            "binary": False,
            "max_df": 1.0,
            "max_features": None,
            "vocabulary": None,
            "norm": "l2",
            "use_idf": True,
            "smooth_idf": True,
            "dtype": np.float64,
            "sublinear_tf": True,
        }
        unsupported = [key for key, value in wanted.items() if params[key] != value]
        if not isinstance(params["min_df"], int):
            unsupported.append("min_df")
        if unsupported:
            raise ValueError(f"AnalysedText does not reproduce these vectorizer settings: {unsupported}")

    def without_vocabulary(self) -> AnalysedText:
        """A copy without the term strings, for worker processes: they only build matrices,
        and each task then carries numbers alone (half a million strings less to pickle)."""
        lean = object.__new__(AnalysedText)
        lean.__dict__.update(self.__dict__, vocabulary=None)
        return lean

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (term, count) entries of ``rows``, one report after the other, and each entry's row."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        where = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        return self.terms[where], self.counts[where], np.repeat(np.arange(len(rows)), lengths)

    def fit_transform(self, rows: np.ndarray) -> tuple[FittedBlock, Any]:
        """As ``TfidfVectorizer.fit_transform`` on the texts of ``rows``, in that order."""
        terms, counts, row_of = self._entries(rows)
        # scikit-learn's errors, in its order, for the same inputs.
        if not len(terms):
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        if len(rows) < self.min_df:
            raise ValueError("max_df corresponds to < documents than min_df")
        size = len(self.sorted_rank)
        # Each term is at most once in a report's entries: its document frequency is its count.
        frequency = np.bincount(terms, minlength=size)
        # CountVectorizer's provisional column: the position of the term's first entry.
        first_at = np.full(size, len(terms), dtype=np.int64)
        np.minimum.at(first_at, terms, np.arange(len(terms)))
        kept = np.flatnonzero(frequency >= self.min_df)
        if not len(kept):
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        columns = np.full(size, -1, dtype=np.int32)
        columns[kept[np.argsort(self.sorted_rank[kept])]] = np.arange(len(kept), dtype=np.int32)
        # Within a row, entries stay in provisional column order (CountVectorizer sorts them
        # before pruning and sorting its vocabulary, and renumbers them without re-sorting).
        order = _by_row_then(row_of, first_at[terms], len(terms))
        order = order[columns[terms[order]] >= 0]
        counts_matrix = self._matrix(
            columns[terms[order]], counts[order], row_of[order], len(rows), len(kept)
        )
        transformer = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True)
        transformer.fit(counts_matrix)
        return FittedBlock(columns, transformer), transformer.transform(counts_matrix, copy=False)

    def transform(self, block: FittedBlock, rows: np.ndarray) -> Any:
        """As the fitted vectorizer's ``transform`` on the texts of ``rows``."""
        terms, counts, row_of = self._entries(rows)
        columns = block.columns[terms]
        # CountVectorizer.transform leaves each row sorted by column.
        order = _by_row_then(row_of, columns, len(block.idf) + 1)
        order = order[columns[order] >= 0]
        counts_matrix = self._matrix(columns[order], counts[order], row_of[order], len(rows), len(block.idf))
        return block.transformer.transform(counts_matrix, copy=False)

    def fitted_terms(self, block: FittedBlock) -> list[str]:
        """The fitted vocabulary, term by column (only where the term strings were kept)."""
        if self.vocabulary is None:
            raise ValueError("this copy has no term strings (see without_vocabulary)")
        kept = np.flatnonzero(block.columns >= 0)
        ordered = kept[np.argsort(block.columns[kept])]
        return [self.vocabulary[index] for index in ordered]

    @staticmethod
    def _matrix(columns: np.ndarray, counts: np.ndarray, row_of: np.ndarray, rows: int, width: int) -> Any:
        # 32-bit indices unless the entries need more, as CountVectorizer chooses.
        index = np.int32 if len(counts) <= np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(rows + 1, dtype=index)
        np.cumsum(np.bincount(row_of, minlength=rows), out=indptr[1:])
        return csr_matrix((counts, columns.astype(index), indptr), shape=(rows, width))


def _by_row_then(row_of: np.ndarray, key: np.ndarray, bound: int) -> np.ndarray:
    """The entries' order by row, then by ``key`` (below ``bound``, at least -1): one argsort
    of a combined key, a third of the time of np.lexsort on these sizes."""
    return np.argsort(row_of * (bound + 1) + (key + 1), kind="stable")
