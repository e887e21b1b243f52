"""`agentpm new`, `agentpm lint`, `agentpm similar` (registered on the main app).

Thin commands: options in, one core call, output. The core lives in agentpm.scaffold,
agentpm.lint and agentpm.similar; heavy imports stay inside the functions.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from agentpm.cli import PATHS_ARG, ShowFormat, TAXONOMY_OPT, _emit_json, _emit_table, _paths_or_corpus, _settings, _stderr, app


class DraftFormat(str, Enum):
    md = "md"
    yaml = "yaml"


class FailOn(str, Enum):
    warning = "warning"
    error = "error"


@app.command("new")
def new(
    title: str = typer.Argument(..., help="The incident's title, in plain words (becomes the file name's slug)."),
    category: Optional[str] = typer.Option(None, "--category", "-c",
                                           help="Taxonomy id; adds its prevention checklist and what to record."),
    severity: Optional[str] = typer.Option(None, "--severity", "-s", help="SEV1 (worst) to SEV4."),
    day: Optional[str] = typer.Option(None, "--date", help="Start date YYYY-MM-DD (default: today, UTC)."),
    folder: Optional[Path] = typer.Option(None, "--dir", "-d", help="Folder to create it in (default: the corpus).",
                                          show_default=False),
    draft_format: DraftFormat = typer.Option(DraftFormat.md, "--format", "-f", help="md (front matter) or yaml."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Start a blameless post-mortem: write YYYY-MM-DD-<slug>.md with every section and print its path.

    The front matter is pre-filled (next free id, title, date, severity, status draft,
    category, an action item to complete); each section carries a guidance comment that
    `agentpm lint` reports until it is replaced. Never overwrites a file (exit 2).

    Example: agentpm new "Refund agent read a renamed field as zero" --category tool-api-drift --severity SEV2
    """
    from agentpm.scaffold import create_draft
    from agentpm.taxonomy import load_taxonomy

    settings = _settings(taxonomy=taxonomy)
    target = folder if folder is not None else Path(settings.corpus)
    draft = create_draft(title, target, load_taxonomy(settings.taxonomy), category_id=category, severity=severity,
                         day=day, output_format=draft_format.value, templates=settings.templates)
    print(draft.path)
    _stderr(f"agentpm: created {draft.id}; fill in each section, then run `agentpm lint {draft.path}`")


def _print_rules() -> None:
    from agentpm.lint import RULES

    for rule in RULES.values():
        print(f"{rule.id}  {rule.severity:<7}  {rule.name:<22}  {rule.why}")


@app.command("lint")
def lint(
    paths: Optional[List[Path]] = PATHS_ARG,
    output_format: ShowFormat = typer.Option(ShowFormat.table, "--format", "-f", help="Output format."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Only these rules (ids or names, comma-separated)."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Skip these rules (ids or names, comma-separated)."),
    fail_on: FailOn = typer.Option(FailOn.warning, "--fail-on",
                                   help="Lowest severity that makes the exit code 1 (error: warnings only print)."),
    rules: bool = typer.Option(False, "--rules", help="List the rules (id, severity, name, why) and exit."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Check post-mortems for completeness and blameless language.

    Rules PM001-PM020 (see --rules): schema, required fields and sections, template
    guidance left in place, time order, action items, counterfactuals, blame words,
    "human error" as a cause, named people blamed, the taxonomy's what-to-record hints,
    and severity versus impact. Silence a rule for one file with a line
    `<!-- agentpm: disable=PM014 -->` (YAML: `# agentpm: disable=PM014`). Exit 0 clean,
    1 findings, 2 unreadable input.

    Example: agentpm lint corpus/ --ignore PM013 --format json
    """
    if rules:
        _print_rules()
        return
    from agentpm.lint import lint_paths, rule_ids
    from agentpm.taxonomy import load_taxonomy

    chosen, skipped = rule_ids(select), rule_ids(ignore)
    settings = _settings(taxonomy=taxonomy)
    result = lint_paths(_paths_or_corpus(paths, settings), load_taxonomy(settings.taxonomy),
                        select=chosen or None, ignore=skipped or None)
    if output_format is ShowFormat.json:
        _emit_json([finding.to_dict() for finding in result.findings])
    else:
        for finding in result.findings:
            print(str(finding))
            if finding.suggestion:
                print(f"    suggestion: {finding.suggestion}")
    _stderr(f"{result.files_checked} files checked: {result.errors} errors, {result.warnings} warnings")
    raise typer.Exit(result.exit_code(fail_on.value))


@app.command("similar")
def similar(
    path: Path = typer.Argument(..., help="The incident to compare (a file)."),
    top: int = typer.Option(5, "--top", "-n", min=1, max=100, help="How many similar incidents to show."),
    corpus_path: Optional[Path] = typer.Option(None, "--corpus", help="Past incidents (default: the configured corpus)."),
    output_format: ShowFormat = typer.Option(ShowFormat.table, "--format", "-f", help="Output format."),
    taxonomy: Optional[Path] = TAXONOMY_OPT,
) -> None:
    """Find the most similar past incidents and their unfinished action items.

    "This happened before, and this fix was never finished": TF-IDF cosine similarity of
    the incident's text against every other incident in the corpus, with each match's
    open (and overdue) action items.

    Example: agentpm similar corpus/2025-01-08-ap-intake-blank-lines-ocr-timeouts.md --top 3
    """
    from agentpm.corpus import load_corpus
    from agentpm.similar import find_similar, load_query
    from agentpm.taxonomy import load_taxonomy

    settings = _settings(taxonomy=taxonomy)
    query = load_query(path)
    corpus = load_corpus(_paths_or_corpus([corpus_path] if corpus_path else None, settings),
                         taxonomy=load_taxonomy(settings.taxonomy))
    matches = find_similar(query, corpus.incidents, top=top)
    if output_format is ShowFormat.json:
        _emit_json([match.to_dict() for match in matches])
    else:
        rows = [{"score": f"{match.score:.2f}", "id": match.incident.id, "date": (match.row["date"] or "")[:10],
                 "category": match.incident.category, "title": match.incident.title,
                 "unfinished": f"{len(match.open_items)} open, {sum(item['overdue'] for item in match.open_items)} overdue",
                 "path": match.row["path"]} for match in matches]
        _emit_table(rows, [("score", "Similarity"), ("id", "ID"), ("date", "Date"), ("category", "Category"),
                           ("title", "Title"), ("unfinished", "Action items"), ("path", "Path")],
                    title=f"incidents most like {path}")
        items = [{"id": match.incident.id, **item, "overdue": "overdue" if item["overdue"] else ""}
                 for match in matches for item in match.open_items]
        if items:
            _emit_table(items, [("id", "Incident"), ("title", "Open action item"), ("owner", "Owner"), ("due", "Due"),
                                ("overdue", "Overdue")], title="never finished: open action items of those incidents")
        else:
            print("No open action items among them.")
    for problem in corpus.problems:
        _stderr(str(problem))
    raise typer.Exit(corpus.exit_code)
