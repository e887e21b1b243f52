"""`agentpm similar`: "this happened before, and this fix was never finished"."""

from __future__ import annotations

import json

from conftest import write

PAST_DRIFT = """---
id: INC-2025-003
title: Refund agent read the renamed ledger amount field as zero
date: 2025-06-02
severity: SEV2
status: final
category: tool-api-drift
action_items:
  - title: Validate ledger API responses against a pinned schema
    owner: payments-platform
    due: 2020-01-31
    status: open
    kind: prevent
  - title: Map the renamed ledger field
    owner: payments-platform
    due: 2025-06-03
    status: done
    kind: mitigate
  - title: Subscribe to the ledger changelog
    owner: payments-platform
    due: 2099-01-01
    status: open
    kind: detect
---
## Root cause
The ledger API renamed `amount` to `transaction_amount`; the refund agent read the missing amount field as zero.
"""

UNRELATED = """---
id: INC-2025-004
title: Support chat memory mixed two customers
date: 2025-07-01
category: context-pollution
action_items:
  - title: Scope memory to one customer id
    owner: support-ai
    due: 2020-01-01
    status: open
    kind: prevent
---
## Root cause
Long sessions kept a second customer's address in the conversation history.
"""

QUERY = """---
id: INC-2026-010
title: Payout agent read a renamed ledger amount field as zero
date: 2026-03-02
status: draft
---
## Root cause
The ledger API renamed the amount field again and the payout agent read zero.
"""


def _corpus(tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "2025-06-02-drift.md", PAST_DRIFT)
    write(folder, "2025-07-01-memory.md", UNRELATED)
    query = write(folder, "2026-03-02-query.md", QUERY)
    return folder, query


def test_most_similar_first_with_its_unfinished_action_items(cli, tmp_path):
    folder, query = _corpus(tmp_path)
    result = cli("similar", str(query), "--corpus", str(folder), "--format", "json")
    assert result.code == 0, result.stderr
    matches = json.loads(result.stdout)
    assert [m["id"] for m in matches][0] == "INC-2025-003"
    assert "INC-2026-010" not in [m["id"] for m in matches]  # never itself
    best = matches[0]
    assert 0 < best["similarity"] <= 1
    assert all(best["similarity"] > other["similarity"] for other in matches[1:])
    items = best["open_action_items"]
    assert [(i["title"], i["overdue"]) for i in items] == [
        ("Validate ledger API responses against a pinned schema", True),
        ("Subscribe to the ledger changelog", False),
    ]
    assert {"owner", "due", "kind"} <= set(items[0])


def test_top_and_table_output(cli, tmp_path):
    folder, query = _corpus(tmp_path)
    one = json.loads(
        cli("similar", str(query), "--corpus", str(folder), "--top", "1", "--format", "json").stdout
    )
    assert len(one) == 1
    table = cli("similar", str(query), "--corpus", str(folder), "--top", "1")
    assert table.code == 0
    assert "INC-2025-003" in table.stdout and "never finished" in table.stdout
    assert "Validate ledger API responses" in table.stdout and "overdue" in table.stdout
    assert "Scope memory to one customer id" not in table.stdout  # an item of an incident not shown


def test_a_query_outside_the_corpus_and_a_corpus_with_nothing_else(cli, tmp_path):
    folder, _ = _corpus(tmp_path)
    outside = write(tmp_path, "elsewhere/q.md", QUERY.replace("INC-2026-010", "INC-2026-011"))
    matches = json.loads(cli("similar", str(outside), "--corpus", str(folder), "--format", "json").stdout)
    # The corpus holds a near-copy under another id: a different file, so it is a (very) similar incident.
    assert [m["id"] for m in matches][:2] == ["INC-2026-010", "INC-2025-003"]
    alone = write(tmp_path, "alone/q.md", QUERY)
    result = cli("similar", str(alone), "--corpus", str(alone.parent), "--format", "json")
    assert result.code == 0 and json.loads(result.stdout) == []


def test_unreadable_or_invalid_query_is_a_one_line_error(cli, tmp_path):
    folder, _ = _corpus(tmp_path)
    for name, content in (("bin.md", b"\x00\x01"), ("bad.md", "---\ntitle: [x\n---\n")):
        path = write(tmp_path, name, content)
        result = cli("similar", str(path), "--corpus", str(folder))
        assert result.code == 2 and str(path) in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
