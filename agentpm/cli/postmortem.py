"""`agentpm new`, `agentpm lint`, `agentpm similar`."""

from __future__ import annotations

from pathlib import Path

import typer

from agentpm.cli.app import PATHS_ARG, TAXONOMY_OPT, app, paths_or_corpus, settings
from agentpm.cli.output import (
    DRAFT_FORMATS,
    SHOW_FORMATS,
    choices,
    emit,
    emit_table,
    format_option,
    note,
    report_problems,
    value,
)

FAIL_ON = choices("warning", "error")


@app.command("new")
def new(
    title: str = typer.Argument(
        ..., help="The incident's title, in plain words (becomes the file name's slug)."
    ),
    category: str | None = typer.Option(
        None, "--category", "-c", help="Taxonomy id; adds its prevention checklist and what to record."
    ),
    severity: str | None = typer.Option(None, "--severity", "-s", help="SEV1 (worst) to SEV4."),
    day: str | None = typer.Option(None, "--date", help="Start date YYYY-MM-DD (default: today, UTC)."),
    folder: Path | None = typer.Option(
        None, "--dir", "-d", help="Folder to create it in (default: the corpus).", show_default=False
    ),
    draft_format: DRAFT_FORMATS = format_option(
        DRAFT_FORMATS, default="md", help="md (front matter) or yaml."
    ),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Start a blameless post-mortem: write YYYY-MM-DD-<slug>.md with every section and print its path.

    The front matter is pre-filled (next free id, title, date, severity, status draft,
    category, an action item to complete); each section carries a guidance comment that
    `agentpm lint` reports until it is replaced. Never overwrites a file (exit 2).

    Example: agentpm new "Refund agent read a renamed field as zero" --category tool-api-drift --severity SEV2
    """
    from agentpm.postmortem.scaffold import create_draft
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy)
    target = folder if folder is not None else Path(chosen.corpus)
    draft = create_draft(
        title,
        target,
        load_taxonomy(chosen.taxonomy),
        category_id=category,
        severity=severity,
        day=day,
        output_format=value(draft_format),
        templates=chosen.templates,
    )
    emit(None, "text", text=f"{draft.path}\n")
    note(f"agentpm: created {draft.id}; fill in each section, then run `agentpm lint {draft.path}`")


@app.command("lint")
def lint(
    paths: list[Path] | None = PATHS_ARG,
    output_format: SHOW_FORMATS = format_option(SHOW_FORMATS),
    select: list[str] | None = typer.Option(
        None, "--select", help="Only these rules (ids or names, comma-separated)."
    ),
    ignore: list[str] | None = typer.Option(
        None, "--ignore", help="Skip these rules (ids or names, comma-separated)."
    ),
    fail_on: FAIL_ON = typer.Option(
        FAIL_ON("warning"),
        "--fail-on",
        help="Lowest severity that makes the exit code 1 (error: warnings only print).",
    ),
    rules: bool = typer.Option(False, "--rules", help="List the rules (id, severity, name, why) and exit."),
    taxonomy: Path | None = TAXONOMY_OPT,
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
    from agentpm.postmortem import lint as core

    if rules:
        emit(None, "text", text=core.rules_text())
        return
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy)
    result = core.lint_paths(
        paths_or_corpus(paths, chosen),
        load_taxonomy(chosen.taxonomy),
        select=core.rule_ids(select) or None,
        ignore=core.rule_ids(ignore) or None,
        corpus=Path(chosen.corpus) if paths else None,
    )
    shown = "text" if output_format == "table" else output_format
    emit([finding.to_dict() for finding in result.findings], shown, text=result.text())
    note(f"{result.files_checked} files checked: {result.errors} errors, {result.warnings} warnings")
    raise typer.Exit(result.exit_code(value(fail_on)))


@app.command("similar")
def similar(
    path: Path = typer.Argument(..., help="The incident to compare (a file)."),
    top: int = typer.Option(5, "--top", "-n", min=1, max=100, help="How many similar incidents to show."),
    corpus_path: Path | None = typer.Option(
        None, "--corpus", help="Past incidents (default: the configured corpus)."
    ),
    output_format: SHOW_FORMATS = format_option(SHOW_FORMATS),
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Find the most similar past incidents and their unfinished action items.

    "This happened before, and this fix was never finished": TF-IDF cosine similarity of
    the incident's text against every other incident in the corpus, with each match's
    open (and overdue) action items.

    Example: agentpm similar corpus/2025-01-08-ap-intake-blank-lines-ocr-timeouts.md --top 3
    """
    from agentpm.analysis import similar as core
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy)
    corpus = load_corpus(
        paths_or_corpus([corpus_path] if corpus_path else None, chosen),
        taxonomy=load_taxonomy(chosen.taxonomy),
    )
    matches = core.find_similar(core.load_query(path), corpus.incidents, top=top)
    emit(
        [match.to_dict() for match in matches],
        output_format,
        core.MATCH_COLUMNS,
        title=f"incidents most like {path}",
        table_data=core.match_rows(matches),
    )
    if output_format == "table":
        items = core.open_item_rows(matches)
        if items:
            emit_table(items, core.OPEN_ITEM_COLUMNS, "never finished: open action items of those incidents")
        else:
            emit(None, "text", text="No open action items among them.\n")
    report_problems(corpus.problems)
    raise typer.Exit(corpus.exit_code)
