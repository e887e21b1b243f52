"""The classifier at prediction time: a weights-only artefact and numpy, nothing else.

Training (``agentpm.classifier.training``) fits a scikit-learn Pipeline and exports it as a JSON
manifest plus a ``weights.npz`` of plain numeric arrays. This module loads that artefact
without executing code (``allow_pickle=False``) and reproduces the pipeline's
probabilities with numpy alone, because importing scikit-learn costs seconds and a single
``agentpm classify`` must not. ``tests/test_model.py`` proves the two agree to 1e-9.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentpm.classifier.features import channels, prose_word_count
from agentpm.classifier.identity import MANIFEST, WEIGHTS, model_hash
from agentpm.errors import ModelError
from agentpm.safeload import UnreadableInput, read_regular_file

if TYPE_CHECKING:  # pragma: no cover
    from agentpm.records.incident import Incident
    from agentpm.taxonomy import Taxonomy

FORMAT = "agentpm-model"
FORMAT_VERSION = 1
#: Look-up tables derived from the vocabulary, saved beside the weights to spare their
#: building at every start (see :func:`write_lookup`), and the record that vouches for them.
LOOKUP = "lookup.npz"
LOOKUP_RECORD = "lookup.json"
#: scikit-learn's default token pattern ``(?u)\b\w\w+\b``, which training uses unchanged,
#: without its anchors: a maximal run of word characters always starts and ends at a word
#: boundary, so they find the same tokens and only cost time.
_TOKENS = re.compile(r"\w\w+")
_TOKENS_AND_SPACES = re.compile(r"\w\w+| ")
_CHANNELS = ("cause", "context")
#: Feature-matrix entries in one block above which scores come from a scipy sparse product
#: (importing scipy costs 0.15 s), and the lower bar once scipy is loaded anyway.
SPARSE_MINIMUM, SPARSE_ONCE_IMPORTED = 20_000, 2_000


@dataclass
class Prediction:
    """What the model says about one incident, including when it declines to say."""

    path: str | None
    id: str | None
    category: str | None
    confidence: float
    probabilities: dict[str, float]
    abstained: bool
    reason: str | None
    runner_up: str | None = None
    explanation: dict[str, list[dict[str, Any]]] | None = None
    secondary: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "id": self.id,
            "category": self.category,
            "confidence": round(self.confidence, 6),
            "probabilities": {key: round(value, 6) for key, value in self.probabilities.items()},
            "abstained": self.abstained,
            "reason": self.reason,
            "runner_up": self.runner_up,
            "secondary": list(self.secondary),
        }
        if self.explanation is not None:
            data["explanation"] = self.explanation
        return data


# -- text blocks ------------------------------------------------------------------------


def terms_blob(terms: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)


def _terms_from_blob(blob: np.ndarray) -> list[str]:
    text = blob.tobytes().decode("utf-8")
    return text.split("\n") if text else []


class _Terms(Sequence[str]):
    """A block's vocabulary, split from its blob only when a term is asked for: with prebuilt
    look-up tables only explanations need the terms themselves (17 ms of a cold start)."""

    def __init__(self, blob: np.ndarray):
        self._blob = blob
        self._count = int(np.count_nonzero(blob == ord("\n"))) + 1 if len(blob) else 0
        self._terms: list[str] | None = None

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[override]
        if self._terms is None:
            self._terms = _terms_from_blob(self._blob)
        return self._terms[index]


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)``, which imports numpy.ma on first use: 40 ms of a cold `classify`."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


class _KeyTable:
    """Vocabulary n-gram keys (non-negative int64) and their columns in an open-addressing hash
    table, probed for a whole array of queries at once: several times faster than a binary
    search over sorted keys, which was the largest cost of meeting new words."""

    _EMPTY = -1

    @classmethod
    def prebuilt(cls, saved: dict[str, np.ndarray], size: int) -> _KeyTable:
        """A table saved by :meth:`arrays`, checked for shape and range before it is used."""
        bits, slots, keys, columns = int(saved["bits"][0]), saved["slots"], saved["keys"], saved["columns"]
        if (
            not 4 <= bits <= 40
            or not (len(slots) == len(keys) == len(columns))
            or slots.dtype != np.int32
            or keys.dtype != np.int64
            or columns.dtype != np.int32
            or (len(slots) and (slots.min() < 0 or slots.max() >= 1 << bits or keys.min() < 0))
            or (len(columns) and (columns.min() < 0 or columns.max() >= max(size, 1)))
        ):
            raise ValueError("a prebuilt look-up table does not fit this model")
        table = cls.__new__(cls)
        table.bits = bits
        table.keys = np.full(1 << bits, cls._EMPTY, dtype=np.int64)
        table.columns = np.zeros(1 << bits, dtype=np.int64)
        table.keys[slots] = keys
        table.columns[slots] = columns
        return table

    def arrays(self) -> dict[str, np.ndarray]:
        """The occupied slots only (a table is at most half full), in compact types."""
        slots = np.flatnonzero(self.keys != self._EMPTY)
        return {
            "bits": np.array([self.bits], dtype=np.int64),
            "slots": slots.astype(np.int32),
            "keys": self.keys[slots],
            "columns": self.columns[slots].astype(np.int32),
        }

    def __init__(self, keys: np.ndarray, columns: np.ndarray):
        # At most half full, so a probe sequence is short whether the key is there or not.
        self.bits = max(4, (2 * len(keys)).bit_length())
        self.keys = np.full(1 << self.bits, self._EMPTY, dtype=np.int64)
        self.columns = np.zeros(1 << self.bits, dtype=np.int64)
        pending = np.arange(len(keys))
        slots = self._slots(keys)
        while len(pending):
            free = self.keys[slots] == self._EMPTY
            # Of the keys that reach the same free slot this round, the first one takes it.
            _, first = np.unique(slots[free], return_index=True)
            taken = np.flatnonzero(free)[first]
            self.keys[slots[taken]] = keys[pending[taken]]
            self.columns[slots[taken]] = columns[pending[taken]]
            waiting = np.ones(len(pending), dtype=bool)
            waiting[taken] = False
            pending, slots = pending[waiting], (slots[waiting] + 1) & ((1 << self.bits) - 1)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        # Fibonacci hashing: the top bits of key × 2^64/φ, which spread packed n-gram codes well.
        return ((keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - self.bits)).astype(
            np.int64
        )

    def find(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``queries`` that are vocabulary terms, their columns)."""
        mask = (1 << self.bits) - 1
        slots = self._slots(queries)
        stored = self.keys[slots]
        # Most queries settle at their first slot (found, or an empty slot: not a term), so
        # that round runs over whole arrays and only the rest walk on.
        found = np.where(stored == queries, self.columns[slots], -1)
        pending = np.flatnonzero((found < 0) & (stored != self._EMPTY))
        slots = slots[pending]
        while len(pending):
            slots = (slots + 1) & mask
            stored = self.keys[slots]
            hit = stored == queries[pending]
            found[pending[hit]] = self.columns[slots[hit]]
            going_on = ~hit & (stored != self._EMPTY)
            pending, slots = pending[going_on], slots[going_on]
        positions = np.flatnonzero(found >= 0)
        return positions, found[positions]


def _count(
    rows: np.ndarray, columns: np.ndarray, size: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, occurrences) of each distinct (row, column) pair, sorted by row then column.

    ``weights`` (small non-negative integers) count each pair that many times. They ride in
    the low bits of the sort key, because a plain sort is several times faster than argsort,
    and keys are 32-bit whenever they fit, which halves the sort again.
    """
    if not len(columns):
        return rows, columns, columns
    keys = rows * size + columns
    shift = max(int(weights.max()).bit_length(), 1) if weights is not None else 0
    bits = int(keys.max()).bit_length() + shift
    if bits > 62:
        raise ModelError("batch too large for the numpy predictor's count keys")
    if bits < 32:
        keys = keys.astype(np.int32)
    if weights is not None:
        keys = (keys << shift) | weights.astype(keys.dtype)
    keys.sort()
    distinct = keys >> shift if shift else keys
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(distinct[1:], distinct[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    if weights is None:
        counts = np.diff(np.append(starts, len(keys)))
    else:
        total = np.cumsum(keys & ((1 << shift) - 1), dtype=np.int64)
        ends = np.append(starts[1:], len(keys)) - 1
        counts = total[ends] - np.concatenate(([0], total[ends[:-1]]))
    distinct = distinct[starts].astype(np.int64)
    return distinct // size, distinct % size, counts


def _gather(starts: np.ndarray, lengths: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``concatenate([flat[s:s + n] for s, n in zip(starts, lengths)])`` without a Python loop."""
    total = int(lengths.sum())
    if not total:
        return np.empty(0, dtype=flat.dtype)
    ends = np.cumsum(lengths)
    return flat[np.repeat(starts - (ends - lengths), lengths) + np.arange(total, dtype=np.int64)]


class _PerWord:
    """A variable-length int64 array per word number: one flat array plus a start and a length
    per word, so that the arrays of many words are one :func:`_gather`. Storage grows by
    doubling, so remembering new words costs the same however many are already known."""

    def __init__(self) -> None:
        self.words = self.used = 0
        self._start = np.empty(1024, dtype=np.int64)
        self._length = np.empty(1024, dtype=np.int64)
        self._flat = np.empty(16384, dtype=np.int64)

    @staticmethod
    def _room(array: np.ndarray, needed: int) -> np.ndarray:
        if needed <= len(array):
            return array
        grown = np.empty(max(needed, 2 * len(array)), dtype=array.dtype)
        grown[: len(array)] = array
        return grown

    def extend(self, values: np.ndarray, bounds: np.ndarray) -> None:
        """Append words whose arrays are ``values[bounds[i]:bounds[i + 1]]``."""
        count = len(bounds) - 1
        self._start = self._room(self._start, self.words + count)
        self._length = self._room(self._length, self.words + count)
        self._flat = self._room(self._flat, self.used + len(values))
        self._start[self.words : self.words + count] = bounds[:-1] + self.used
        self._length[self.words : self.words + count] = np.diff(bounds)
        self._flat[self.used : self.used + len(values)] = values
        self.words += count
        self.used += len(values)

    def rows_and_values(
        self, rows: np.ndarray, words: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The arrays of ``words`` end to end, for each value the row of its word, and each
        word's array length."""
        lengths = self._length[words]
        return np.repeat(rows, lengths), _gather(self._start[words], lengths, self._flat), lengths


class _Words:
    """The distinct whitespace-separated words of one text channel, numbered as first seen.

    Neither analyzer looks across whitespace (char_wb n-grams are padded words, and word
    tokens are runs of word characters), so what a block needs from a word is worked out
    once, kept by the word's number, and a batch of texts becomes array gathers. The table
    is forgotten when it grows past ``LIMIT`` words, to bound memory on endless input.
    """

    LIMIT = 200_000

    def __init__(self, analysers: list[Any]):
        self.analysers = analysers
        self.forget()

    def forget(self) -> None:
        self.number: dict[str, int] = {}
        for analyser in self.analysers:
            analyser.memory = _PerWord()

    def numbers(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row of each word occurrence, its word number), in text order, for lowercased texts."""
        word_lists = [text.split() for text in texts]
        words = list(chain.from_iterable(word_lists))
        if len(self.number) > self.LIMIT:
            self.forget()
        numbers = np.fromiter(map(self.number.get, words, repeat(-1)), dtype=np.int64, count=len(words))
        if len(numbers) and numbers.min() < 0:
            unknown = np.flatnonzero(numbers < 0)
            unseen = [words[i] for i in unknown.tolist()]
            new = list(dict.fromkeys(unseen))
            first = len(self.number)
            self.number.update(zip(new, range(first, first + len(new)), strict=False))
            for analyser in self.analysers:
                analyser.learn(new)
            numbers[unknown] = np.fromiter(
                map(self.number.__getitem__, unseen), dtype=np.int64, count=len(unseen)
            )
        per_text = np.fromiter(map(len, word_lists), dtype=np.int64, count=len(texts))
        return np.repeat(np.arange(len(texts), dtype=np.int64), per_text), numbers


class _WordBlock:
    """Word n-grams (n <= 3), exactly as scikit-learn's TfidfVectorizer(analyzer='word') builds
    them: tokens become ids, unigrams are an array look-up, longer n-grams packed int64 keys."""

    _BITS = 21

    def __init__(
        self, terms: list[str], ngram_range: tuple[int, int], prebuilt: dict[str, np.ndarray] | None = None
    ):
        self.size = len(terms)
        self.min_n, self.max_n = ngram_range
        if self.max_n > 3:
            raise ModelError("word n-grams longer than 3 are not supported by the numpy predictor")
        self.memory = _PerWord()
        if prebuilt is not None:
            tokens = _terms_from_blob(prebuilt["tokens"])
            ids = prebuilt["token_ids"]
            if len(tokens) != len(ids) or (len(ids) and (ids.min() < 1 or ids.max() >= 1 << self._BITS)):
                raise ValueError("prebuilt word tokens do not fit this model")
            self.token_ids = dict(zip(tokens, ids.tolist(), strict=True))
            self.unigram_column = prebuilt["unigram_column"]
            if self.unigram_column.dtype != np.int64 or (
                len(self.unigram_column) and self.unigram_column.max() >= max(self.size, 1)
            ):
                raise ValueError("a prebuilt unigram table does not fit this model")
            self.longer = _KeyTable.prebuilt(prebuilt, self.size)
            return
        # A token's id is its unigram column + 1 (0 means "not a vocabulary token"). With one
        # min_df for all n, every token of a kept bigram is itself a kept unigram; tokens that
        # are not (other settings) get ids past the end.
        spaces = np.fromiter((term.count(" ") for term in terms), dtype=np.int64, count=len(terms))
        unigrams = np.flatnonzero(spaces == 0)
        self.token_ids: dict[str, int] = dict(
            zip([terms[i] for i in unigrams], (unigrams + 1).tolist(), strict=False)
        )
        all_keys, all_columns = [], []
        for n in range(2, self.max_n + 1):
            columns = np.flatnonzero(spaces == n - 1)
            if not len(columns):
                continue
            # One C-level split for all n-grams of this length, then a dict look-up per token.
            tokens = " ".join([terms[i] for i in columns]).split(" ")
            for token in tokens:
                if token not in self.token_ids:
                    self.token_ids[token] = len(terms) + 1 + len(self.token_ids)
            ids = np.array([self.token_ids[token] for token in tokens], dtype=np.int64).reshape(
                len(columns), n
            )
            keys = np.zeros(len(columns), dtype=np.int64)
            for position in range(n):
                keys |= ids[:, position] << (self._BITS * position)
            all_keys.append(keys)
            all_columns.append(columns)
        if max(self.token_ids.values(), default=0) >= (1 << self._BITS):
            raise ModelError("word vocabulary too large for the numpy predictor")
        self.unigram_column = np.full(max(self.token_ids.values(), default=0) + 1, -1, dtype=np.int64)
        self.unigram_column[unigrams + 1] = unigrams
        self.longer = _KeyTable(
            np.concatenate(all_keys) if all_keys else np.empty(0, dtype=np.int64),
            np.concatenate(all_columns) if all_columns else np.empty(0, dtype=np.int64),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """What the constructor builds from the terms, to be saved beside the model."""
        return {
            "tokens": terms_blob(list(self.token_ids)),
            "token_ids": np.fromiter(self.token_ids.values(), dtype=np.int64, count=len(self.token_ids)),
            "unigram_column": self.unigram_column,
            **self.longer.arrays(),
        }

    def learn(self, words: list[str]) -> None:
        """Remember each word's token ids (0 for tokens outside the vocabulary)."""
        # One regex pass over all the words, with the single spaces between them found as
        # separators: tokens never contain a space, so each word's tokens lie between two.
        found = _TOKENS_AND_SPACES.findall(" ".join(words) + " ")
        ids = np.fromiter(map(self.token_ids.get, found, repeat(0)), dtype=np.int64, count=len(found))
        separators = np.flatnonzero(np.fromiter(map(" ".__eq__, found), dtype=bool, count=len(found)))
        starts = np.concatenate(([0], separators[:-1] + 1))
        keep = np.ones(len(found), dtype=bool)
        keep[separators] = False
        lengths = separators - starts
        self.memory.extend(ids[keep], np.concatenate(([0], np.cumsum(lengths))))

    def counts(
        self, rows: np.ndarray, words: np.ndarray, table_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column, count) of every vocabulary n-gram in the texts made of these word occurrences."""
        rows, ids, _ = self.memory.rows_and_values(rows, words)
        total = len(ids)
        found_rows, found_columns = [], []
        for n in range(self.min_n, self.max_n + 1):
            if n > total:
                break
            if n == 1:
                columns = self.unigram_column[ids]
                known = columns >= 0
                found_rows.append(rows[known])
                found_columns.append(columns[known])
                continue
            width = total - n + 1
            packed = ids[:width].copy()
            # An n-gram never spans two texts.
            known = (packed > 0) & (rows[:width] == rows[n - 1 :])
            for position in range(1, n):
                following = ids[position : width + position]
                known &= following > 0
                packed |= following << (self._BITS * position)
            hit, columns = self.longer.find(packed[known])
            found_rows.append(rows[:width][known][hit])
            found_columns.append(columns)
        if not found_rows:
            return rows[:0], rows[:0], rows[:0]
        return _count(np.concatenate(found_rows), np.concatenate(found_columns), self.size)


class _CharBlock:
    """Character n-grams inside word boundaries (scikit-learn's ``char_wb``), vectorised.

    char_wb n-grams depend only on the word, so each distinct word is analysed once and its
    vocabulary columns remembered; a text is then its distinct words' columns, weighted by
    how often each word occurs in it.
    An n-gram is one int64 key: alphabet codes packed ``bits`` apart plus its length on top.
    """

    def __init__(
        self, terms: list[str], ngram_range: tuple[int, int], prebuilt: dict[str, np.ndarray] | None = None
    ):
        self.size = len(terms)
        self.min_n, self.max_n = ngram_range
        if self.min_n > 3:
            raise ModelError(
                "char n-grams must start at length 3 or less (a padded one-letter word has length 3)"
            )
        self.bits = 60 // self.max_n
        self.memory = _PerWord()
        if prebuilt is not None:
            self.char_codes = prebuilt["char_codes"]
            if self.char_codes.dtype != np.int64 or not len(self.char_codes) or self.char_codes.min() < 0:
                raise ValueError("a prebuilt character table does not fit this model")
            self.vocabulary = _KeyTable.prebuilt(prebuilt, self.size)
            return
        # Vectorised over all terms at once: building keys term by term costs ~0.3 s at start-up.
        joined = np.frombuffer("\n".join(terms).encode("utf-32-le"), dtype="<u4").astype(np.int64)
        lengths = np.fromiter(map(len, terms), dtype=np.int64, count=len(terms))
        starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1])) if len(terms) else lengths
        points = _distinct(joined[joined != ord("\n")])
        if len(points) >= (1 << self.bits):
            raise ModelError(
                f"char n-gram alphabet of {len(points)} characters is too large for {self.bits}-bit codes"
            )
        # Dense code table: one gather per character instead of a search.
        self.char_codes = np.zeros(int(points.max(initial=0)) + 2, dtype=np.int64)
        self.char_codes[points] = np.arange(1, len(points) + 1)
        keys = lengths << (self.bits * self.max_n)
        for position in range(self.max_n):
            longer = np.flatnonzero(lengths > position)
            keys[longer] |= self.char_codes[joined[starts[longer] + position]] << (self.bits * position)
        if len(_distinct(keys)) != len(terms):
            raise ModelError("char n-gram vocabulary has duplicate terms")
        self.vocabulary = _KeyTable(keys, np.arange(len(terms), dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        """What the constructor builds from the terms, to be saved beside the model."""
        return {"char_codes": self.char_codes, **self.vocabulary.arrays()}

    def learn(self, words: list[str]) -> None:
        """Remember the vocabulary columns of every char_wb n-gram of each word."""
        padded = " " + "  ".join(words) + " "
        points = np.frombuffer(padded.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        mapped = self.char_codes[np.minimum(points, len(self.char_codes) - 1)]
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words)) + 2
        remaining = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(points), dtype=np.int64)
        owner = np.repeat(np.arange(len(words), dtype=np.int64), lengths)
        total = len(points)
        keys, owners = [], []
        accumulated = np.zeros(total, dtype=np.int64)
        for n in range(1, self.max_n + 1):
            if n > total:
                break
            accumulated = accumulated[: total - n + 1] + (mapped[n - 1 :] << (self.bits * (n - 1)))
            if n >= self.min_n:
                inside = remaining[: total - n + 1] >= n
                keys.append(accumulated[inside] | (n << (self.bits * self.max_n)))
                owners.append(owner[: total - n + 1][inside])
        hit, columns = self.vocabulary.find(np.concatenate(keys))
        hit_owners = np.concatenate(owners)[hit]
        order = np.argsort(hit_owners, kind="stable")
        self.memory.extend(columns[order], np.searchsorted(hit_owners[order], np.arange(len(words) + 1)))

    def counts(
        self, rows: np.ndarray, words: np.ndarray, table_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column, count) of every vocabulary char_wb n-gram in the texts made of these word
        occurrences; ``table_size`` is how many words the word table holds."""
        # Each distinct word once per text, weighted by its occurrences there.
        rows, words, occurrences = _count(rows, words, table_size)
        rows, columns, lengths = self.memory.rows_and_values(rows, words)
        return _count(rows, columns, self.size, np.repeat(occurrences, lengths))


@dataclass
class Block:
    """One TF-IDF block of the feature union: a channel, an analyzer, a vocabulary."""

    name: str
    channel: int
    analyzer: str
    ngram_range: tuple[int, int]
    weight: float
    offset: int
    idf: np.ndarray
    terms: Sequence[str]
    sublinear_tf: bool = True
    prebuilt: dict[str, np.ndarray] | None = field(default=None, repr=False)
    lookup: Any = field(default=None, repr=False)
    prebuilt_used: bool = False

    def __post_init__(self) -> None:
        kinds = {"word": _WordBlock, "char_wb": _CharBlock}
        if self.analyzer not in kinds:
            raise ModelError(f"unsupported analyzer {self.analyzer!r} in model block {self.name!r}")
        if self.prebuilt is not None:
            try:
                self.lookup = kinds[self.analyzer](self.terms, self.ngram_range, self.prebuilt)  # type: ignore[arg-type]
                self.prebuilt_used = True
            except (KeyError, ValueError, TypeError, IndexError):
                self.lookup = None  # tables that do not fit are rebuilt from the terms
            self.prebuilt = None
        if self.lookup is None:
            self.lookup = kinds[self.analyzer](list(self.terms), self.ngram_range)

    def entries(
        self, text_count: int, rows: np.ndarray, words: np.ndarray, table_size: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, global columns, values) of this block for ``text_count`` texts given as word
        occurrences (see :class:`_Words`): sublinear tf × idf, l2 per row, × weight."""
        rows, columns, counts = self.lookup.counts(rows, words, table_size)
        if not len(columns):
            return rows, columns, np.empty(0)
        tf = counts.astype(np.float64)
        if self.sublinear_tf:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[columns]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=text_count))
        values = values / norms[rows] * self.weight
        return rows, columns + self.offset, values


# -- the model --------------------------------------------------------------------------


class Model:
    """A loaded artefact: vectorise, score, calibrate, abstain, explain."""

    def __init__(
        self,
        manifest: dict[str, Any],
        arrays: dict[str, np.ndarray],
        path: Path | None = None,
        model_hash: str = "",
        lookup: dict[str, np.ndarray] | None = None,
    ):
        self.manifest = manifest
        self.path = path
        self.hash = model_hash
        self.classes: list[str] = list(manifest["classes"])
        classifier = manifest["classifier"]
        self.temperature = float(classifier["temperature"])
        self.coef = arrays["coef"]
        # Feature-major copy for the sparse product, whose inner loop runs along a row.
        self.coef_by_feature = np.ascontiguousarray(self.coef.T)
        self.intercept = arrays["intercept"]
        thresholds = manifest["thresholds"]
        self.min_words = int(thresholds["min_words"])
        self.confidence_threshold = float(thresholds["confidence"])
        self.margin = float(thresholds["margin"])
        # A runner-up this probable is suggested as a contributing (secondary) category.
        self.secondary_threshold = thresholds.get("secondary")
        self.blocks: list[Block] = []
        offset = 0
        for spec in manifest["features"]["blocks"]:
            terms = _Terms(arrays[f"{spec['name']}.terms"])
            idf = arrays[f"{spec['name']}.idf"]
            if len(terms) != len(idf) or len(terms) != spec["n_features"]:
                raise ModelError(
                    f"model block {spec['name']!r}: vocabulary and idf sizes disagree; the artefact is damaged"
                )
            self.blocks.append(
                Block(
                    spec["name"],
                    _CHANNELS.index(spec["channel"]),
                    spec["analyzer"],
                    tuple(spec["ngram_range"]),
                    float(spec["weight"]),
                    offset,
                    idf,
                    terms,
                    bool(spec.get("sublinear_tf", True)),
                    _tables_of(lookup, spec["name"]),
                )
            )
            offset += len(terms)
        #: whether the look-up tables came prebuilt from ``LOOKUP`` (else built from the terms)
        self.prebuilt_lookup = lookup is not None and all(block.prebuilt_used for block in self.blocks)
        self.words = [
            _Words([block.lookup for block in self.blocks if block.channel == channel])
            for channel in range(len(_CHANNELS))
        ]
        if self.coef.shape != (len(self.classes), offset) or self.intercept.shape != (len(self.classes),):
            raise ModelError("model coefficients do not match its vocabulary; the artefact is damaged")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """A model whose numbers cannot give a probability is refused, never used for a prediction."""
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ModelError(f"model temperature is {self.temperature}; it must be a positive number")
        if not 0.0 <= self.confidence_threshold <= 1.0 or not 0.0 <= self.margin <= 1.0 or self.min_words < 0:
            raise ModelError("model thresholds are out of range (confidence and margin 0-1, min_words >= 0)")
        arrays = [self.coef, self.intercept, *(block.idf for block in self.blocks)]
        if not all(np.isfinite(array).all() for array in arrays):
            raise ModelError("model weights contain NaN or infinity; the artefact is damaged")

    # -- scoring --------------------------------------------------------------------------
    #: Texts vectorised together: large enough to amortise numpy's per-call cost, small
    #: enough that a batch's (row, column) keys sort in cache.
    BATCH = 64

    def _block_entries(
        self, pairs: Sequence[tuple[str, str]], word_counts: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(rows, columns, values) of each block's part of the feature matrix, rows ascending;
        adds each text's whitespace-separated words to ``word_counts`` if given."""
        for channel, words in enumerate(self.words):
            # Both analyzers lowercase first (scikit-learn's default).
            rows, numbers = words.numbers([pair[channel].lower() for pair in pairs])
            if word_counts is not None:
                word_counts += np.bincount(rows, minlength=len(pairs))
            for block in self.blocks:
                if block.channel == channel:
                    yield block.entries(len(pairs), rows, numbers, max(len(words.number), 1))

    def vectorise(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns, values) of the feature matrix for (cause, context) pairs."""
        parts = list(self._block_entries(pairs))
        return tuple(np.concatenate([part[i] for part in parts]) for i in range(3))  # type: ignore[return-value]

    def decisions(
        self, pairs: Sequence[tuple[str, str]], word_counts: np.ndarray | None = None
    ) -> np.ndarray:
        """Linear scores (one row per pair, one column per class) before temperature and softmax."""
        scores = np.tile(self.intercept, (len(pairs), 1))
        for rows, columns, values in self._block_entries(pairs, word_counts):
            if len(columns) >= SPARSE_MINIMUM or (
                len(columns) >= SPARSE_ONCE_IMPORTED and "scipy.sparse" in sys.modules
            ):
                # A sparse product reads each coefficient row once, contiguously: four times
                # faster than numpy gathers on a batch, worth scipy's import only for big input.
                from scipy.sparse import csr_matrix

                pointers = np.searchsorted(rows, np.arange(len(pairs) + 1))
                matrix = csr_matrix((values, columns, pointers), shape=(len(pairs), self.coef.shape[1]))
                scores += matrix @ self.coef_by_feature
                continue
            for k, weights in enumerate(self.coef):
                scores[:, k] += np.bincount(rows, weights=weights[columns] * values, minlength=len(pairs))
        return scores

    def _probabilities(
        self, pairs: Sequence[tuple[str, str]], word_counts: np.ndarray | None = None
    ) -> np.ndarray:
        scores = self.decisions(pairs, word_counts) / self.temperature
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def _scores(self, texts: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Probability rows and whitespace word counts for (cause, context) pairs, a batch at a time."""
        word_counts = np.zeros(len(texts), dtype=np.int64)
        if not len(texts):
            return np.empty((0, len(self.classes))), word_counts
        # Each batch adds to its own slice (a view) of word_counts.
        table = np.vstack(
            [
                self._probabilities(
                    texts[start : start + self.BATCH], word_counts[start : start + self.BATCH]
                )
                for start in range(0, len(texts), self.BATCH)
            ]
        )
        return table, word_counts

    def predict_texts(self, texts: Sequence[tuple[str, str]]) -> np.ndarray:
        """Probability rows for (cause, context) pairs: the numpy twin of the sklearn pipeline."""
        return self._scores(texts)[0]

    # -- decisions ------------------------------------------------------------------------
    def decide(self, probabilities: np.ndarray, words: int) -> tuple[str | None, str | None, str | None]:
        """(category or None, abstention reason or None, runner-up) under the manifest's thresholds."""
        order = np.argsort(-probabilities, kind="stable")
        top, second = order[0], order[1] if len(order) > 1 else order[0]
        runner_up = self.classes[second] if len(order) > 1 else None
        if words < self.min_words:
            return None, "insufficient_text", runner_up
        if len(order) > 1 and probabilities[top] - probabilities[second] < self.margin:
            return None, "ambiguous", runner_up
        if probabilities[top] < self.confidence_threshold:
            return None, "low_confidence", runner_up
        return self.classes[top], None, runner_up

    def suggest_secondary(
        self, probabilities: np.ndarray, category: str | None, runner_up: str | None
    ) -> list[str]:
        """The runner-up as a secondary category when it is probable enough (never when abstaining)."""
        if category is None or runner_up is None or self.secondary_threshold is None:
            return []
        return (
            [runner_up]
            if probabilities[self.classes.index(runner_up)] >= float(self.secondary_threshold)
            else []
        )

    def predict(self, incident: Incident, explain: bool = False, top_terms: int = 8) -> Prediction:
        return self.predict_many([incident], explain, top_terms)[0]

    def predict_parsed(
        self, incidents: Sequence[Incident | None], explain: bool = False
    ) -> list[Prediction | None]:
        """:meth:`predict_many` over a batch of parse results with gaps (None for a file that did
        not parse), which stay None."""
        predictions = iter(
            self.predict_many([incident for incident in incidents if incident is not None], explain)
        )
        return [next(predictions) if incident is not None else None for incident in incidents]

    def predict_many(
        self, incidents: Sequence[Incident], explain: bool = False, top_terms: int = 8
    ) -> list[Prediction]:
        """Predictions for incidents, vectorised in batches (the same numbers as one at a time)."""
        texts = [channels(incident) for incident in incidents]
        table, word_counts = self._scores(texts)
        predictions = []
        for incident, pair, probabilities, words in zip(
            incidents, texts, table, word_counts.tolist(), strict=False
        ):
            category, reason, runner_up = self.decide(
                probabilities, prose_word_count(incident, channel_words=words)
            )
            top = int(np.argmax(probabilities))
            path = incident.path
            prediction = Prediction(
                path=str(path) if path else None,
                id=incident.id,
                category=category,
                confidence=float(probabilities[top]),
                probabilities=dict(zip(self.classes, probabilities.tolist(), strict=False)),
                abstained=category is None,
                reason=reason,
                runner_up=runner_up,
                secondary=self.suggest_secondary(probabilities, category, runner_up),
            )
            if explain:
                best = self.classes[top]
                prediction.explanation = {best: self.explain(pair, best, top_terms)}
                if runner_up and runner_up != best:
                    prediction.explanation[runner_up] = self.explain(pair, runner_up, top_terms)
            predictions.append(prediction)
        return predictions

    def explain(self, texts: tuple[str, str], category: str, top_terms: int = 8) -> list[dict[str, Any]]:
        """Terms that pushed towards ``category``: weight × feature value, largest first."""
        row = self.classes.index(category)
        _, columns, values = self.vectorise([texts])
        contributions = self.coef[row, columns] * values
        order = np.argsort(-contributions, kind="stable")
        terms = []
        for position in order[:top_terms]:
            if contributions[position] <= 0:
                break
            block, term = self.term_of(int(columns[position]))
            terms.append(
                {
                    "term": term,
                    "kind": block.analyzer,
                    "channel": _CHANNELS[block.channel],
                    "contribution": round(float(contributions[position]), 6),
                }
            )
        return terms

    def term_of(self, column: int) -> tuple[Block, str]:
        for block in self.blocks:
            if block.offset <= column < block.offset + len(block.terms):
                return block, block.terms[column - block.offset]
        raise IndexError(column)

    # -- provenance -----------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Where this model came from: versions, taxonomy, corpus, settings, thresholds, scores."""
        manifest = self.manifest
        return {
            "path": str(self.path) if self.path else None,
            "hash": self.hash,
            "trained_at": manifest.get("trained_at"),
            "agentpm_version": manifest.get("agentpm_version"),
            "versions": manifest.get("versions"),
            "taxonomy": manifest.get("taxonomy"),
            "corpus": manifest.get("corpus"),
            "classifier": manifest.get("classifier"),
            "settings": manifest["selection"]["chosen"],
            "selection": manifest["selection"]["method"],
            "features": [
                {key: block[key] for key in ("name", "analyzer", "ngram_range", "weight", "n_features")}
                for block in manifest["features"]["blocks"]
            ],
            "thresholds": manifest.get("thresholds"),
            "cv": manifest.get("cv"),
            "scores": manifest.get("scores"),
        }

    def check_taxonomy(self, taxonomy: Taxonomy) -> None:
        recorded = self.manifest["taxonomy"]
        if recorded["ids"] != taxonomy.ids or str(recorded["version"]) != taxonomy.version:
            raise ModelError(
                f"the model at {self.path} was trained for taxonomy v{recorded['version']} "
                f"({', '.join(recorded['ids'])}), but the taxonomy in use is v{taxonomy.version} "
                f"({', '.join(taxonomy.ids)}); retrain with `agentpm model train --taxonomy ...` "
                "or pass the matching --model"
            )


# -- loading and saving -----------------------------------------------------------------


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in (".pkl", ".pickle", ".joblib", ".sav"):
        raise ModelError(
            f"{path}: refusing to load a pickle; agentpm models are weights-only "
            f"(a folder with {MANIFEST} and {WEIGHTS}) and loading never executes code"
        )
    try:
        head = path.read_bytes()[:2] if path.is_file() else b""
    except OSError:
        head = b""
    if head[:1] == b"\x80":
        raise ModelError(f"{path}: this is a Python pickle; refusing to load it (pickles can execute code)")


def _tables_of(lookup: dict[str, np.ndarray] | None, block: str) -> dict[str, np.ndarray] | None:
    if lookup is None:
        return None
    prefix = f"{block}."
    return {name[len(prefix) :]: array for name, array in lookup.items() if name.startswith(prefix)} or None


def lookup_arrays(model: Model) -> dict[str, np.ndarray]:
    """The look-up tables a model builds from its vocabulary at load, block by block."""
    return {
        f"{block.name}.{name}": array
        for block in model.blocks
        for name, array in block.lookup.arrays().items()
    }


def write_lookup(folder: Path | str) -> None:
    """Save the model's look-up tables beside it (``LOOKUP``), so loading need not build them.

    Derived data only: the file records the checksum of the weights it was built from and its
    own; a lookup file that is missing, damaged or for other weights is ignored at load.
    """
    from agentpm.records.writing import atomic_write

    folder = Path(folder)
    model = Model(*_read_model(folder))
    tables = save_npz(lookup_arrays(model), compress=False)
    recorded = {
        "format": "agentpm-lookup",
        "weights_sha256": model.manifest["weights_sha256"],
        "sha256": hashlib.sha256(tables).hexdigest(),
    }
    atomic_write(folder / LOOKUP, tables)
    atomic_write(folder / LOOKUP_RECORD, json.dumps(recorded, indent=1) + "\n")


def _read_lookup(folder: Path, weights_sha256: str) -> dict[str, np.ndarray] | None:
    try:
        recorded = json.loads(read_regular_file(folder / LOOKUP_RECORD, 4096, "a model's look-up record"))
        if not isinstance(recorded, dict) or recorded.get("weights_sha256") != weights_sha256:
            return None
        tables = read_regular_file(folder / LOOKUP, MAX_WEIGHTS_BYTES, "a model's look-up tables")
        if hashlib.sha256(tables).hexdigest() != recorded.get("sha256"):
            return None
        return read_arrays(tables, folder / LOOKUP)
    except (UnreadableInput, ValueError, ModelError, OSError):
        return None


def load_model(path: Path | str) -> Model:
    """Load a model folder (or its manifest.json) safely; raise ModelError with a fix if it is not one."""
    return _load_cached(str(Path(path).resolve()))


@lru_cache(maxsize=4)
def _load_cached(resolved: str) -> Model:
    manifest, arrays, path, hash_ = _read_model(Path(resolved))
    try:
        return Model(manifest, arrays, path, hash_, _read_lookup(path, manifest["weights_sha256"]))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelError(
            f"{path / MANIFEST}: model manifest is missing or has a bad {exc}; retrain the model"
        ) from None


def _read_model(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], Path, str]:
    """(manifest, weight arrays, model folder, model hash), every check done; ModelError if not."""
    if path.is_file():
        _refuse_pickle(path)
        if path.name != MANIFEST:
            raise ModelError(
                f"{path}: not an agentpm model; pass the model folder (with {MANIFEST} and {WEIGHTS})"
            )
        path = path.parent
    manifest_path, weights_path = path / MANIFEST, path / WEIGHTS
    if not manifest_path.is_file() or not weights_path.is_file():
        raise ModelError(
            f"{path}: no agentpm model here (expected {MANIFEST} and {WEIGHTS}); "
            "train one with `agentpm model train -o PATH`"
        )
    _refuse_pickle(weights_path)
    try:
        manifest_bytes = read_regular_file(manifest_path, MAX_MANIFEST_BYTES, "a model manifest")
        weights_bytes = read_regular_file(weights_path, MAX_WEIGHTS_BYTES, "model weights")
        manifest = json.loads(manifest_bytes)
    except UnreadableInput as exc:
        raise ModelError(f"{manifest_path.parent}: {exc}") from None
    except ValueError as exc:
        raise ModelError(f"{manifest_path}: unreadable model manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{manifest_path}: not an agentpm model manifest (format must be {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{manifest_path}: model format version {manifest.get('format_version')} is not supported "
            f"(this agentpm reads version {FORMAT_VERSION}); retrain with `agentpm model train`"
        )
    recorded = manifest.get("weights_sha256")
    if not isinstance(recorded, str):
        raise ModelError(
            f"{manifest_path}: the manifest has no weights_sha256; a model must name its weights"
        )
    weights_digest = hashlib.sha256(weights_bytes)
    if recorded != weights_digest.hexdigest():
        raise ModelError(
            f"{weights_path}: weights do not match the manifest's checksum; the artefact is damaged"
        )
    arrays = read_arrays(weights_bytes, weights_path)
    return manifest, arrays, path, model_hash(manifest_bytes, weights_bytes, weights_digest)


#: Caps on what a model may make agentpm read or allocate (the shipped model: 6 KB and 7 MB).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
MAX_ARRAYS_BYTES = 1024 * 1024 * 1024


def read_arrays(weights: bytes, where: Path) -> dict[str, np.ndarray]:
    """The numeric arrays of an .npz, each header checked before its data is read: numbers only,
    no pickles, and a declared shape that matches the entry's size, within the caps."""
    import io

    arrays: dict[str, np.ndarray] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(weights)) as archive:
            for info in archive.infolist():
                total += info.file_size
                if total > MAX_ARRAYS_BYTES:
                    raise ModelError(f"{where}: arrays over {MAX_ARRAYS_BYTES >> 20} MiB; refusing to load")
                with archive.open(info) as stream:
                    version = np.lib.format.read_magic(stream)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                    elif version == (2, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                    else:
                        raise ModelError(f"{where}: array {info.filename!r} uses .npy format {version}")
                    if dtype.hasobject or dtype.kind not in "fiu":
                        raise ModelError(
                            f"{where}: array {info.filename!r} has dtype {dtype}; only numbers are allowed"
                        )
                    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    if declared > info.file_size:
                        raise ModelError(
                            f"{where}: array {info.filename!r} claims {declared:,} bytes but holds "
                            f"{info.file_size:,}; the artefact is damaged"
                        )
                    data = stream.read(declared)
                    if len(data) != declared:
                        raise ModelError(f"{where}: array {info.filename!r} is truncated")
                    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
                    arrays[info.filename.removesuffix(".npy")] = array
    except ModelError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as exc:
        raise ModelError(f"{where}: not a readable .npz archive of numeric arrays ({exc})") from None
    return arrays


#: An array is stored as it is when deflating would not make it at least this much smaller: the
#: weights (dense doubles) shrink by a sixth, and inflating them cost 40 ms at every start.
MIN_DEFLATE_GAIN = 0.2


def save_npz(arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    """An .npz whose bytes depend only on the arrays (fixed zip timestamps), so retraining is bit-for-bit.

    ``compress`` deflates the arrays that deflating makes notably smaller (see
    ``MIN_DEFLATE_GAIN``) and stores the rest as they are; ``compress=False`` stores them all.
    """
    import io
    import zlib

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(arrays):
            array_buffer = io.BytesIO()
            np.lib.format.write_array(array_buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            payload = array_buffer.getvalue()
            method = zipfile.ZIP_STORED
            if compress:
                # the same deflate settings as zipfile's own, to learn what it would save
                deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
                deflated = len(deflater.compress(payload)) + len(deflater.flush())
                if deflated <= (1 - MIN_DEFLATE_GAIN) * len(payload):
                    method = zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
    return buffer.getvalue()


__all__ = ["Model", "Prediction", "load_model", "save_npz", "model_hash", "terms_blob", "write_lookup"]
