"""The taxonomy is data: validated on load, crosswalked to real codes, never hard-coded."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO, TAXONOMY, write

from agentpm.errors import TaxonomyError
from agentpm.taxonomy import RELATIONS, load_taxonomy

IDS = (
    "context-pollution",
    "tool-api-drift",
    "cascading-multi-agent",
    "inadequate-fallback",
    "prompt-injection",
    "other",
)


def test_shipped_taxonomy_has_the_six_ids_in_order():
    taxonomy = load_taxonomy(TAXONOMY)
    assert taxonomy.version == "1.0"
    assert tuple(taxonomy.ids) == IDS
    for category in taxonomy.categories:
        assert category.scenarios and category.prevention and category.labelling_notes and category.record
        schemes = {mapping.scheme for mapping in category.crosswalk}
        assert {"owasp-llm", "afr"} <= schemes or {"owasp-llm", "owasp-asi"} <= schemes
        assert all(mapping.relation in RELATIONS for mapping in category.crosswalk)


def test_crosswalk_codes_have_the_right_shape():
    taxonomy = load_taxonomy(TAXONOMY)
    shapes = {
        "mast": r"FM-[1-3]\.[1-6]",
        "owasp-llm": r"LLM(0[1-9]|10):2025",
        "owasp-asi": r"ASI(0[1-9]|10)",
        "afr": r"AF-\d{4}",
    }
    for category in taxonomy.categories:
        for mapping in category.crosswalk:
            assert re.fullmatch(shapes[mapping.scheme], mapping.code), (category.id, mapping.code)


def test_agent_failure_registry_ids_are_real():
    afr = pytest.importorskip("afr", reason="agent-failure-registry is in the test extra")
    known = {mode.id: mode.title for mode in afr.modes()}
    for category in load_taxonomy(TAXONOMY).categories:
        for mapping in category.crosswalk:
            if mapping.scheme == "afr":
                assert mapping.code in known, mapping.code
                assert mapping.name == known[mapping.code]


BROKEN = [
    (
        "duplicate",
        "version: '1'\nname: t\ncategories:\n- {id: a, name: A, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n- {id: a, name: B, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n",
        "duplicate id 'a'",
    ),
    (
        "relation",
        "version: '1'\nname: t\ncategories:\n- {id: a, name: A, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n], crosswalk: [{scheme: x, code: '1', relation: similar, note: n}]}\n",
        "relation",
    ),
    (
        "missing",
        "version: '1'\nname: t\ncategories:\n- {id: a, name: A, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n",
        "categories[0].description: required key is missing",
    ),
    (
        "badid",
        "version: '1'\nname: t\ncategories:\n- {id: 'Not An Id', name: A, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n",
        "not a valid id",
    ),
    (
        "regex",
        "version: '1'\nname: t\ncategories:\n- {id: a, name: A, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n], record: [{id: r, hint: h, pattern: '(['}]}\n",
        "regular expression",
    ),
]


@pytest.mark.parametrize("name,text,fragment", BROKEN, ids=[case[0] for case in BROKEN])
def test_broken_taxonomies_are_refused_with_the_place(tmp_path, name, text, fragment):
    path = write(tmp_path, f"{name}.yaml", text)
    with pytest.raises(TaxonomyError, match=re.escape(fragment)) as caught:
        load_taxonomy(path)
    assert str(path) in str(caught.value)


def test_a_users_own_taxonomy_works_end_to_end(cli, tmp_path):
    own = write(
        tmp_path,
        "ours.yaml",
        "version: '2.1'\nname: ours\ncategories:\n"
        "- {id: flaky-tool, name: Flaky tool, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n"
        "- {id: bad-plan, name: Bad plan, description: d, scenarios: [s], prevention: [p], typical_impact: i, labelling_notes: [n]}\n",
    )
    write(tmp_path, "c/a.md", "---\ntitle: t\ncategory: flaky-tool\n---\n")
    write(tmp_path, "c/b.md", "---\ntitle: t\ncategory: tool-api-drift\n---\n")
    result = cli("validate", str(tmp_path / "c"), "--taxonomy", str(own))
    assert (
        result.code == 1
        and "unknown category 'tool-api-drift'; known ids: flaky-tool, bad-plan" in result.stdout
    )
    shown = json.loads(cli("taxonomy", "show", "--taxonomy", str(own), "--format", "json").stdout)
    assert [c["id"] for c in shown["categories"]] == ["flaky-tool", "bad-plan"]


def test_no_code_hard_codes_the_category_ids():
    for path in (REPO / "agentpm").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for category_id in IDS[:-1]:  # "other" is an ordinary English word
            assert f'"{category_id}"' not in text and f"'{category_id}'" not in text, (path, category_id)


def test_taxonomy_show_one_category_yaml(cli):
    import yaml

    data = yaml.safe_load(cli("taxonomy", "show", "prompt-injection", "--format", "yaml").stdout)
    assert data["id"] == "prompt-injection"
    assert any(m["code"] == "LLM01:2025" and m["relation"] == "exact" for m in data["crosswalk"])
