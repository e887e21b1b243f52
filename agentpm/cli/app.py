"""The typer app, its shared options, and the one place errors become messages and exit codes.

Command modules (records, classifier, analysis, postmortem) register themselves on ``app``;
this module never imports them, so there is no cycle. Errors are translated inside the
click layer (the group's ``invoke``), so commands behave the same in-process (typer's
``CliRunner``) as from the console script.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from agentpm import __version__
from agentpm.cli.output import Progress, note
from agentpm.errors import AgentPMError, UsageError
from agentpm.parallel import GC_YOUNG_THRESHOLD

#: A bug in agentpm, not bad input: its own code, so scripts can tell the two apart.
INTERNAL_ERROR = 3
INTERRUPTED = 130


class AgentPMGroup(TyperGroup):
    """Runs a command and turns what it raises into one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except AgentPMError as exc:
            note(f"agentpm: error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            note("agentpm: interrupted")
            raise typer.Exit(INTERRUPTED) from None
        except BrokenPipeError:
            # `agentpm list | head`: the reader went away; that is not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
            if os.environ.get("AGENTPM_DEBUG"):
                raise
            note(
                f"agentpm: internal error: {type(exc).__name__}: {exc} (set AGENTPM_DEBUG=1 for the traceback, "
                "and please report it)"
            )
            raise typer.Exit(INTERNAL_ERROR) from None


_SETTINGS = {"help_option_names": ["-h", "--help"]}


def command_group(help: str) -> typer.Typer:
    # Plain click help: rich-rendered help costs ~70 ms of imports on every --help.
    return typer.Typer(
        help=help,
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings=_SETTINGS,
        add_completion=False,
        pretty_exceptions_enable=False,
    )


app = typer.Typer(
    name="agentpm",
    cls=AgentPMGroup,
    help="Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_SETTINGS,
)
taxonomy_app = command_group("Show the failure taxonomy.")
app.add_typer(taxonomy_app, name="taxonomy")
model_app = command_group("Train, evaluate and inspect the classifier.")
app.add_typer(model_app, name="model")

MODEL_OPT = typer.Option(
    None, "--model", help="Model folder (default: configured, else the shipped one).", show_default=False
)
PATHS_ARG = typer.Argument(
    None,
    help="Incident files or folders (searched recursively). Default: the configured corpus.",
    show_default=False,
)
TAXONOMY_OPT = typer.Option(
    None, "--taxonomy", help="Taxonomy file (default: configured, else the shipped one).", show_default=False
)
FORCE_OPT = typer.Option(False, "--force", help="Replace the output if it exists.")


def settings(**overrides: Any) -> Any:
    from agentpm.config import load_settings

    return load_settings(overrides)


def paths_or_corpus(paths: list[Path] | None, chosen: Any) -> list[Path]:
    """The paths given, else the configured corpus (which must exist)."""
    if paths:
        return list(paths)
    if not Path(chosen.corpus).exists():
        raise UsageError(
            f"no paths given and the configured corpus {chosen.corpus} does not exist "
            f"(set by {chosen.origin.get('corpus', 'default')}); pass files or folders"
        )
    return [Path(chosen.corpus)]


def load(paths: list[Path] | None, taxonomy: Path | None, **overrides: Any) -> tuple[Any, Any, Any]:
    """Settings, taxonomy and corpus for a command that reads incident files."""
    from agentpm.records.corpus import load_corpus
    from agentpm.taxonomy import load_taxonomy

    chosen = settings(taxonomy=taxonomy, **overrides)
    loaded_taxonomy = load_taxonomy(chosen.taxonomy)
    with Progress("reading") as progress:
        corpus = load_corpus(paths_or_corpus(paths, chosen), taxonomy=loaded_taxonomy, progress=progress)
    return corpus, loaded_taxonomy, chosen


def _version(value: bool) -> None:
    if value:
        print(f"agentpm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Post-mortems for AI-agent failures: classify, trend, report, scaffold and lint incident reports, offline."""


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Console-script entry."""
    # A run is short and builds thousands of small objects that live to the end (records,
    # predictions, rows); young-generation collections every 700 allocations kept walking
    # them, a tenth of a large classify's time. Cycles are still collected, just less often.
    gc.set_threshold(GC_YOUNG_THRESHOLD)
    # SIGTERM unwinds like Ctrl-C (every `finally` runs, so no temporary file is left behind).
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except KeyboardInterrupt:  # pressed during start-up or option parsing
        note("agentpm: interrupted")
        sys.exit(INTERRUPTED)
