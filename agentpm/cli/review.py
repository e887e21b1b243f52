"""`agentpm review` and `agentpm model agreement`.

The commands stay thin: the queue, the session, CSV export/apply and the agreement figures
live in :mod:`agentpm.classifier.review` and :mod:`agentpm.classifier.agreement`. This
module only adds what needs a terminal: single key presses (cbreak mode, always restored)
and a rich screen that draws the session's plain-data cards, with every piece of incident
text cleaned and never read as rich markup.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path
from typing import Any

import typer

from agentpm.cli.app import MODEL_OPT, PATHS_ARG, TAXONOMY_OPT, app, model_app, paths_or_corpus, settings
from agentpm.cli.output import SHOW_FORMATS, Progress, emit, emit_table, format_option, note, report_problems
from agentpm.display import clean
from agentpm.errors import InputError, UsageError


class TerminalKeys:
    """One key press per call, without Enter: the terminal is in cbreak mode for the session
    and restored on every way out (Ctrl-C still interrupts, decisions are already written)."""

    def __init__(self, stream: Any = None):
        self.fd = (stream or sys.stdin).fileno()
        self.saved: Any = None

    def __enter__(self) -> TerminalKeys:
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __call__(self) -> str:
        first = os.read(self.fd, 1)
        if first == b"\x1b":
            # An arrow or function key is an escape sequence: swallow it as one unknown key.
            while select.select([self.fd], [], [], 0.01)[0]:
                first += os.read(self.fd, 8)
        return first.decode("utf-8", "replace")

    def __exit__(self, *exc: Any) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


class RichScreen:
    """Draws the session's cards with rich; incident text goes in as Text, never as markup."""

    def __init__(self, console: Any = None):
        from rich.console import Console

        self.console = console or Console(highlight=False)

    def show(self, card: dict[str, Any]) -> None:
        from rich.rule import Rule
        from rich.text import Text

        why = card["why"] + (f" ({card['reason']})" if card["reason"] else "")
        self.console.print(Rule(f"{card['position']}/{card['total']} · {why} · margin {card['margin']:.2f}"))
        text = Text()
        text.append(clean(card["title"]) + "\n", style="bold")
        text.append(f"{clean(card['path'])}  id {clean(card['id'] or '-')}  ", style="dim")
        text.append(f"human label: {clean(card['human_category'] or '-')}\n")
        for label, key in (("Summary", "summary"), ("Root cause", "root_cause")):
            if card[key]:
                text.append(f"{label}: ", style="bold").append(clean(card[key]) + "\n")
        text.append("Model: ", style="bold").append(card["prediction"] or "needs review", style="cyan")
        text.append(
            "   " + "  ".join(f"{row['category']} {row['probability']:.2f}" for row in card["top"]) + "\n"
        )
        for category, terms in card["terms"].items():
            words = ", ".join(clean(term["term"]).strip() for term in terms)
            text.append(f"  why {category}: ", style="dim").append(words + "\n")
        if card["secondary"]:
            text.append(f"Secondary: {', '.join(card['secondary'])}\n")
        text.append("   ".join(card["choices"]) + "\n", style="green")
        text.append(card["keys"], style="dim")
        self.console.print(text)

    def say(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text(clean(message), style="yellow"))


def _classified(paths: list[Path] | None, model: Path | None, taxonomy: Path | None) -> tuple[Any, ...]:
    from agentpm.classifier.classify import load_and_classify, model_for
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(chosen.taxonomy)
    predictor = model_for(chosen.model, loaded_taxonomy)
    with Progress("classifying") as progress:
        corpus, predictions = load_and_classify(
            paths_or_corpus(paths, chosen), loaded_taxonomy, predictor, progress=progress
        )
    return corpus, predictions, predictor, loaded_taxonomy


def _apply_labels(labels: Path, corpus: Any, taxonomy: Any, labeller: Any) -> tuple[int, list]:
    from agentpm.classifier.review import apply_plan, plan_label_csv
    from agentpm.records.parsing import MAX_FILE_BYTES
    from agentpm.safeload import UnreadableInput, read_regular_file

    try:
        text = read_regular_file(labels, MAX_FILE_BYTES, "a labels CSV").decode("utf-8")
    except (UnreadableInput, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{labels}: cannot read the labels CSV ({exc}); give a UTF-8 CSV file") from None
    plans, problems = plan_label_csv(text, str(labels), corpus.incidents, taxonomy)
    if problems:
        report_problems(problems)
        raise InputError(
            f"{labels}: {len(problems)} problems; nothing was applied — fix the rows above and rerun"
        )
    return apply_plan(plans, labeller)


def _interactive(queue: Any, predictor: Any, labeller: Any) -> list:
    from agentpm.classifier.review import ReviewSession, explainer, session_summary

    if not sys.stdin.isatty():
        raise UsageError(
            "review needs a terminal for its keys; in scripts use --export, --apply or --accept-above"
        )
    if not queue.items:
        note("review: nothing to review (use --all to see labelled files again)")
        return []
    with TerminalKeys() as keys:
        session = ReviewSession(
            queue.items, predictor.classes, labeller, keys, RichScreen(), explain=explainer(predictor)
        )
        summary = session.run()
    note(session_summary(summary))
    return session.problems


@app.command("review")
def review_command(
    paths: list[Path] | None = PATHS_ARG,
    by: str | None = typer.Option(None, "--by", help="Who labels (default: your OS user name)."),
    include_all: bool = typer.Option(False, "--all", help="Also show reviewed files and agreeing labels."),
    add_front_matter: bool = typer.Option(
        False, "--add-front-matter", help="Give plain Markdown a front matter block for its labels."
    ),
    export: Path | None = typer.Option(None, "--export", help="Write the queue as CSV (- for stdout)."),
    apply: Path | None = typer.Option(
        None, "--apply", help="Apply labels from a CSV (path or id, category)."
    ),
    accept_above: float | None = typer.Option(
        None, "--accept-above", help="Accept predictions with confidence >= P on unlabelled files."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing --export file."),
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Review predictions one incident at a time: abstentions and disagreements first, then
    the closest calls. Keys: a accept, 1-6 pick, s secondary, k skip, u undo, q quit. Each
    decision is written at once (category, secondary, labelled_by, labelled_at, label_source);
    nothing else in the file changes, and a second run resumes.

    Example: agentpm review corpus/ --by dana
    """
    from agentpm.classifier import review as core
    from agentpm.records.parsing import exit_code_for
    from agentpm.records.writing import write_new_file

    core.check_one_mode(export=export, apply=apply, accept_above=accept_above)
    corpus, predictions, predictor, loaded_taxonomy = _classified(paths, model, taxonomy)
    report_problems(corpus.problems)
    queue = core.review_queue(corpus.incidents, predictions, include_all, add_front_matter)
    report_problems(queue.skipped)
    labeller = core.Labeller(by or core.default_labeller(), add_front_matter)
    refused: list = []
    if export is not None:
        write_new_file(export, core.queue_csv(queue.items), overwrite=force)
        note(f"review: {len(queue.items)} incidents in the queue written to {export}")
    elif apply is not None or accept_above is not None:
        written, refused = (
            _apply_labels(apply, corpus, loaded_taxonomy, labeller)
            if apply is not None
            else core.accept_confident(queue.items, accept_above, labeller)
        )
        note(f"review: {written} labels written" + (f", {len(refused)} files refused" if refused else ""))
    else:
        refused = _interactive(queue, predictor, labeller)
    report_problems(refused)
    raise typer.Exit(exit_code_for(list(corpus.problems) + refused))


@model_app.command("agreement")
def agreement_command(
    first: Path = typer.Argument(..., help="A labelled folder or an id,category CSV."),
    second: Path | None = typer.Argument(None, help="The other folder or CSV.", show_default=False),
    human_vs_model: bool = typer.Option(
        False, "--human-vs-model", help="Compare FIRST's human labels with the model's predictions."
    ),
    resamples: int = typer.Option(2000, "--resamples", min=100, max=100_000, help="Bootstrap resamples."),
    output_format: SHOW_FORMATS = format_option(SHOW_FORMATS),
    model: Path | None = MODEL_OPT,
    taxonomy: Path | None = TAXONOMY_OPT,
) -> None:
    """Agreement between two label sources: Cohen's kappa with a bootstrap 95 % interval (fixed
    seed), raw and per-category agreement, the confusion table, and the items only one source has.

    Example: agentpm model agreement labels-dana.csv labels-lee.csv --format json
    """
    from agentpm.classifier import agreement as core
    from agentpm.records.parsing import exit_code_for
    from agentpm.taxonomy import load_taxonomy

    if human_vs_model == (second is not None):
        raise UsageError("give two sources (folders or CSV files), or one folder with --human-vs-model")
    chosen = settings(taxonomy=taxonomy, model=model)
    loaded_taxonomy = load_taxonomy(chosen.taxonomy)
    if human_vs_model:
        pair = core.human_vs_model_labels(first, loaded_taxonomy, chosen.model)
    else:
        pair = core.paired_labels(
            core.read_source(first, loaded_taxonomy), core.read_source(second, loaded_taxonomy)
        )
    result = core.agreement(pair, loaded_taxonomy.ids, resamples=resamples)
    if output_format == "json":
        emit(result, "json")
    else:
        for title, columns, rows in core.agreement_tables(result):
            emit_table(rows, columns, title)
    report_problems(pair.problems)
    raise typer.Exit(exit_code_for(pair.problems))
