"""The agentpm command line: parse options, make one core call, emit.

The only package that imports typer and rich. Importing it registers every command on
:data:`app`; :func:`main` is the console script.
"""

from agentpm.cli import analysis, classifier, exchange, postmortem, records, review  # noqa: F401  (register commands)
from agentpm.cli.app import app, main

__all__ = ["app", "main"]
