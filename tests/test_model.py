"""The classifier: parity of the numpy predictor with scikit-learn, a safe artefact,
abstention, explanations, `classify --write`, and bit-for-bit retraining."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, REPO, TAXONOMY, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentpm.classifier.predictor import load_model
from agentpm.config import default_model_path
from agentpm.errors import ModelError
from agentpm.records.corpus import load_corpus
from agentpm.taxonomy import load_taxonomy

SHIPPED = default_model_path()


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(TAXONOMY)


@pytest.fixture(scope="module")
def shipped():
    return load_model(SHIPPED)


@pytest.fixture(scope="module")
def fitted(taxonomy, shipped):
    """The scikit-learn pipeline fitted exactly as the shipped model was, its training set, and the corpus's features."""
    from agentpm.classifier import training

    data = training.training_set(load_corpus([CORPUS], taxonomy=taxonomy), taxonomy)
    chosen = shipped.manifest["selection"]["chosen"]
    # fit_pipeline's fit, step by step, keeping the corpus's feature matrix for the test below
    pipeline = training.build_pipeline(chosen, shipped.temperature)
    matrix = pipeline.named_steps["features"].fit_transform(data.texts)
    weights = data.sample_weights(chosen.get("real_weight", 1.0))
    pipeline.named_steps["classifier"].fit(matrix, data.labels, sample_weight=weights)
    return pipeline, data, matrix


def test_numpy_and_sklearn_agree_on_the_whole_corpus(fitted, shipped):
    pipeline, data, matrix = fitted
    expected = pipeline.named_steps["classifier"].predict_proba(matrix)
    got = shipped.predict_texts([tuple(row) for row in data.texts])
    assert np.abs(expected - got).max() < 1e-9


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_words = st.lists(
    st.sampled_from(
        "the agent tool retry 429 schema renamed context window quota planner ignore previous "
        "instructions v2.1.0 timeout ÄÖü 東京 café   \t\n".split(" ")
    ),
    max_size=60,
).map(" ".join)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cause=st.one_of(_text, _words), context=st.one_of(_text, _words))
def test_numpy_and_sklearn_agree_on_generated_text(fitted, shipped, cause, context):
    pipeline, _, _ = fitted
    texts = np.array([[cause, context]], dtype=object)
    assert np.abs(pipeline.predict_proba(texts) - shipped.predict_texts([(cause, context)])).max() < 1e-9


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pairs=st.lists(st.tuples(st.one_of(_text, _words), st.one_of(_text, _words)), min_size=1, max_size=70))
def test_a_batch_scores_like_its_texts_one_at_a_time(shipped, pairs):
    """Batching (shared word table, sparse product, texts side by side) never changes a score."""
    from agentpm.classifier.predictor import _load_cached

    alone = np.vstack([shipped.predict_texts([pair]) for pair in pairs])
    assert np.abs(shipped.predict_texts(pairs) - alone).max() < 1e-12  # words already known
    fresh = _load_cached.__wrapped__(str(SHIPPED.resolve()))  # words met for the first time, together
    assert np.abs(fresh.predict_texts(pairs) - alone).max() < 1e-12


def test_the_word_table_forgets_without_changing_scores(shipped, monkeypatch):
    from agentpm.classifier import predictor as model_module

    corpus = load_corpus([CORPUS], taxonomy=load_taxonomy(TAXONOMY))
    from agentpm.classifier.features import channels

    pairs = [channels(incident) for incident in corpus.incidents[:150]]
    remembered = shipped.predict_texts(pairs)
    monkeypatch.setattr(model_module._Words, "LIMIT", 50)  # forget after almost every batch
    assert np.abs(shipped.predict_texts(pairs) - remembered).max() < 1e-12
    distinct = len({word for cause, _ in pairs for word in cause.lower().split()})
    assert len(shipped.words[0].number) < distinct  # only the last batch's words are held


def test_sparse_and_numpy_scoring_agree(shipped, monkeypatch):
    """Large batches are scored with a scipy sparse product, small ones with numpy alone."""
    from agentpm.classifier import predictor as model_module
    from agentpm.classifier.features import channels

    pairs = [
        channels(incident)
        for incident in load_corpus([CORPUS], taxonomy=load_taxonomy(TAXONOMY)).incidents[:130]
    ]
    monkeypatch.setattr(model_module, "SPARSE_MINIMUM", 0)
    sparse = shipped.predict_texts(pairs)
    monkeypatch.setattr(model_module, "SPARSE_MINIMUM", 10**12)
    monkeypatch.setattr(model_module, "SPARSE_ONCE_IMPORTED", 10**12)
    assert np.abs(shipped.predict_texts(pairs) - sparse).max() < 1e-12


@settings(max_examples=300)
@given(text=st.one_of(_text, _words))
def test_tokenizer_shortcuts_find_scikit_learns_tokens(text):
    """The predictor drops the \\b anchors of scikit-learn's token pattern and takes an
    all-alphanumeric word as its own token; both must find exactly what the pattern finds."""
    import re

    from agentpm.classifier.predictor import _TOKENS

    reference = re.compile(r"(?u)\b\w\w+\b")
    lowered = text.lower()
    assert _TOKENS.findall(lowered) == reference.findall(lowered)
    for word in lowered.split():
        if word.isalnum():
            assert reference.findall(word) == ([word] if len(word) > 1 else [])


def test_shipped_model_matches_the_taxonomy_and_is_small(shipped, taxonomy):
    shipped.check_taxonomy(taxonomy)
    size = sum(path.stat().st_size for path in SHIPPED.iterdir())
    assert size < 12 * 1024 * 1024  # 7.8 MB of weights (coef stored, not deflated), 3.4 MB of look-up tables
    assert shipped.manifest["corpus"]["incidents"] >= 540
    assert shipped.manifest["thresholds"]["cv_precision"] >= 0.95


def _copy_model(tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(SHIPPED, target)
    return target


def test_pickles_are_refused(tmp_path):
    import pickle

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps({"coef": [1, 2]}))
    with pytest.raises(ModelError, match="refusing to load a pickle"):
        load_model(bad)
    disguised = _copy_model(tmp_path)
    (disguised / "weights.npz").write_bytes(pickle.dumps([1]))
    with pytest.raises(ModelError, match="pickle"):
        load_model(disguised)


def test_object_arrays_are_refused(tmp_path):
    model = _copy_model(tmp_path)
    np.savez(model / "weights.npz", coef=np.array([{"x": 1}], dtype=object), allow_pickle=True)
    manifest = json.loads((model / "manifest.json").read_text())
    # A checksum that matches: the refusal must come from the dtype, not from the checksum.
    manifest["weights_sha256"] = hashlib.sha256((model / "weights.npz").read_bytes()).hexdigest()
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="numeric arrays only|only numbers"):
        load_model(model)


def test_damaged_weights_are_refused(tmp_path):
    model = _copy_model(tmp_path)
    data = bytearray((model / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        load_model(model)


def test_mismatched_taxonomy_is_refused(cli, tmp_path):
    own = write(
        tmp_path,
        "ours.yaml",
        "version: '9'\nname: ours\ncategories:\n"
        "- {id: a, name: A, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n",
    )
    write(tmp_path, "c/x.md", "---\ntitle: t\n---\nsome words here\n")
    result = cli("classify", str(tmp_path / "c"), "--taxonomy", str(own))
    assert result.code == 2
    assert "trained for taxonomy v1.0" in result.stderr and "Traceback" not in result.stderr


def test_classify_json_contract(cli):
    paths = sorted(str(path) for path in (REPO / "tests" / "data" / "ood").glob("*.md"))[:8]
    result = cli("classify", *paths, "--format", "json")
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 8
    ids = load_taxonomy(TAXONOMY).ids
    for row in rows:
        assert {"path", "id", "category", "confidence", "probabilities", "abstained", "reason"} <= set(row)
        assert set(row["probabilities"]) == set(ids)
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
        assert 0 <= row["confidence"] <= 1
        assert (row["category"] is None) == row["abstained"] == (row["reason"] is not None)


def test_abstention_reasons(cli, tmp_path):
    write(tmp_path, "short.md", "---\ntitle: agent broke\n---\nit failed.\n")
    write(
        tmp_path,
        "vague.md",
        "---\ntitle: Something odd happened with the assistant\n---\n"
        "The assistant behaved strangely on Tuesday afternoon and a few people noticed. We looked at it for a "
        "while, talked about it in the channel, and things went back to normal later in the day.\n",
    )
    rows = {
        Path(row["path"]).name: row
        for row in json.loads(cli("classify", str(tmp_path), "--format", "json").stdout)
    }
    assert rows["short.md"]["reason"] == "insufficient_text" and rows["short.md"]["category"] is None
    assert rows["vague.md"]["abstained"] and rows["vague.md"]["reason"] in ("low_confidence", "ambiguous")


def test_threshold_comes_from_the_manifest(cli, tmp_path):
    model = _copy_model(tmp_path)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["thresholds"]["confidence"] = 1.0
    (model / "manifest.json").write_text(json.dumps(manifest))
    incident = REPO / "tests" / "data" / "ood" / "ood-01-agent-keeps-writing-postgres-ddl.md"
    row = json.loads(cli("classify", str(incident), "--model", str(model), "--format", "json").stdout)[0]
    assert row["confidence"] < 1.0 and row["reason"] == "low_confidence"


def test_explain_lists_terms_for_choice_and_runner_up(cli):
    incident = REPO / "tests" / "data" / "ood" / "ood-13-mcp-github-server-param-rename.md"
    row = json.loads(cli("classify", str(incident), "--explain", "--format", "json").stdout)[0]
    assert row["category"] == "tool-api-drift"
    assert set(row["explanation"]) == {row["category"], row["runner_up"]}
    terms = row["explanation"]["tool-api-drift"]
    assert terms and all(term["contribution"] > 0 for term in terms)
    assert terms == sorted(terms, key=lambda term: -term["contribution"])


ODD_MARKDOWN = """---
# a comment that must survive
id: W-1
title:   "Odd   spacing"   # trailing comment
category: other
tags: [a,   b]
---

Body with a line that says category: tool-api-drift, which is prose, not a field.
The vendor's DNS change broke every outbound call from the agent for an hour.
"""

ODD_YAML = """# leading comment
title: 'YAML with comments'
summary: >
  The certificate on the ledger gateway expired and every call from the payout agent failed
  until the platform team renewed it; the agent queued work and paged as designed.
prediction:
  category: tool-api-drift
  confidence: 0.1
extra:   keep me   # and me
"""

ODD_JSON = """{
    "title": "JSON   record",
    "category": "other",
    "summary": "The region hosting the model endpoint was down for two hours; the agent retried with backoff and handed chats to people."
}"""


def test_write_touches_only_the_prediction_field(cli, tmp_path):
    files = {
        "odd.md": ODD_MARKDOWN,
        "odd.yaml": ODD_YAML,
        "odd.json": ODD_JSON,
        "crlf.md": ODD_MARKDOWN.replace("W-1", "W-2").replace("\n", "\r\n"),
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8"))
    result = cli("classify", str(tmp_path), "--write", "--format", "json")
    assert result.code == 0, result.stderr
    assert "stored 4 predictions" in result.stderr
    for name, before in files.items():
        after = (tmp_path / name).read_bytes().decode("utf-8")
        kept = [line for line in after.splitlines(keepends=True) if "prediction" not in line]
        original = [
            line
            for line in before.splitlines(keepends=True)
            if "prediction" not in line
            and not line.startswith(("  category: tool-api-drift", "  confidence: 0.1"))
        ]
        if name.endswith(".json"):
            assert json.loads(after)["prediction"]["model"] == load_model(SHIPPED).hash
            assert json.loads(after)["title"] == "JSON   record"
            assert after.startswith(before.rsplit('"\n}', 1)[0])
        else:
            assert kept == original, name
    # the human label stays exactly as written
    assert "category: other\n" in (tmp_path / "odd.md").read_text()
    # a second run replaces the stored prediction instead of adding another
    cli("classify", str(tmp_path), "--write")
    assert (tmp_path / "odd.yaml").read_text().count("prediction:") == 1
    assert (tmp_path / "odd.json").read_text().count('"prediction"') == 1


def test_write_refuses_plain_markdown_and_leaves_it_alone(cli, tmp_path):
    text = "# Plain report\n\nCategory: other\n\nThe DNS change broke outbound calls from the agent for an hour today.\n"
    path = write(tmp_path, "plain.md", text)
    result = cli("classify", str(path), "--write")
    assert result.code == 1
    assert "plain.md" in result.stderr and "front matter" in result.stderr
    assert path.read_text() == text


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("AGENTPM_SKIP_RETRAIN") == "1", reason="retraining takes about a minute")
def test_retraining_reproduces_the_shipped_model_bit_for_bit(cli, tmp_path):
    shipped_manifest = json.loads((SHIPPED / "manifest.json").read_text())
    result = cli(
        "model",
        "train",
        "--corpus",
        "corpus",
        "-o",
        str(tmp_path / "again"),
        env={"SOURCE_DATE_EPOCH": "1795000000"},
    )
    assert result.code == 0, result.stderr
    for name in ("weights.npz", "lookup.npz", "lookup.json"):
        assert (
            hashlib.sha256((tmp_path / "again" / name).read_bytes()).hexdigest()
            == hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest()
        )
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    for key in ("training_seconds",):
        again.pop(key), shipped_manifest.pop(key)
    assert again == shipped_manifest
    assert load_model(tmp_path / "again").hash == load_model(SHIPPED).hash


def test_model_info(cli):
    info = json.loads(cli("model", "info", "--format", "json").stdout)
    assert info["hash"] == load_model(SHIPPED).hash
    assert info["taxonomy"]["version"] == "1.0" and info["cv"]["macro_f1"] > 0.8
    table = cli("model", "info")
    assert table.code == 0 and "model hash" in table.stdout


def test_model_card_is_for_the_shipped_model():
    card = (REPO / "reports" / "model-card.md").read_text(encoding="utf-8")
    assert f"`{load_model(SHIPPED).hash}`" in card.splitlines()[0], (
        "re-run agentpm model eval after retraining"
    )


def _scores_on_corpus(model) -> np.ndarray:
    from agentpm.classifier.features import channels

    return model.predict_texts([channels(incident) for incident in load_corpus(CORPUS).incidents[:300]])


def test_the_shipped_lookup_tables_are_current_and_used(shipped, tmp_path):
    from agentpm.classifier.predictor import LOOKUP, LOOKUP_RECORD, write_lookup

    assert shipped.prebuilt_lookup
    rebuilt = _copy_model(tmp_path)
    (rebuilt / LOOKUP).unlink()
    (rebuilt / LOOKUP_RECORD).unlink()
    built = load_model(rebuilt)
    assert not built.prebuilt_lookup and built.hash == shipped.hash
    assert np.array_equal(_scores_on_corpus(built), _scores_on_corpus(shipped))
    write_lookup(rebuilt)  # what `model train` writes: the shipped tables must be these bytes
    assert (rebuilt / LOOKUP).read_bytes() == (SHIPPED / LOOKUP).read_bytes()
    assert (rebuilt / LOOKUP_RECORD).read_bytes() == (SHIPPED / LOOKUP_RECORD).read_bytes()


@pytest.mark.parametrize("damage", ["flipped byte", "other weights", "truncated", "not json"])
def test_damaged_lookup_tables_are_ignored_not_trusted(shipped, tmp_path, damage):
    from agentpm.classifier.predictor import LOOKUP, LOOKUP_RECORD

    model = _copy_model(tmp_path)
    tables, record = model / LOOKUP, model / LOOKUP_RECORD
    if damage == "flipped byte":
        data = bytearray(tables.read_bytes())
        data[len(data) // 2] ^= 0xFF
        tables.write_bytes(bytes(data))
    elif damage == "other weights":
        recorded = json.loads(record.read_text())
        recorded["weights_sha256"] = "0" * 64
        record.write_text(json.dumps(recorded))
    elif damage == "truncated":
        tables.write_bytes(tables.read_bytes()[:1000])
    else:
        record.write_text("{")
    loaded = load_model(model)
    assert not loaded.prebuilt_lookup
    assert np.array_equal(_scores_on_corpus(loaded), _scores_on_corpus(shipped))
