"""The one exception tree of agentpm.

The core raises these; only the CLI turns them into messages and exit codes. Each
message says what went wrong, where (path:field or path:line) and how to fix it.
"""

from __future__ import annotations


class AgentPMError(Exception):
    """Base class for every error agentpm raises on purpose."""

    #: exit code the CLI uses for this error (2: usage error or unreadable input)
    exit_code = 2


class UsageError(AgentPMError):
    """The command was called in a way that cannot work (bad option value, missing path)."""


class ConfigError(AgentPMError):
    """The configuration (agentpm.toml, [tool.agentpm], AGENTPM_* variables) is invalid."""


class TaxonomyError(AgentPMError):
    """The taxonomy file is missing, unreadable or does not have the required shape."""


class ModelError(AgentPMError):
    """The model artefact is missing, unsafe, or does not match the taxonomy."""


class InputError(AgentPMError):
    """An input file cannot be read or parsed into an incident."""


class WriteError(AgentPMError):
    """agentpm refused to write, or could not write, a file (it never overwrites silently)."""
