"""The architecture as a contract: layers, no cycles, no private reach-ins, thin commands, ruff clean."""

from __future__ import annotations

import ast
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "agentpm"
CORE_WINGS = ("records", "classifier", "analysis", "postmortem", "exchange")
# What each wing may import from agentpm (besides the shared top-level modules).
ALLOWED = {
    "records": set(),
    "classifier": {"records"},
    "postmortem": {"records"},
    "exchange": {"records"},
    "analysis": {"records", "classifier"},
    "cli": {"records", "classifier", "analysis", "postmortem", "exchange", "cli"},
}
SHARED = {
    "errors",
    "config",
    "taxonomy",
    "parallel",
    "templating",
    "safeload",
    "plainyaml",
    "stats",
    "display",
    "__init__",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """Every agentpm import in the file, at any depth (function-level imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agentpm"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith("agentpm")]
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def wing_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else (parts[1] if len(parts) == 2 else "")


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for module, path in MODULES.items():
        wing = wing_of(module)
        if wing not in ALLOWED:
            continue
        for target, _ in imports_of(path):
            target_wing = wing_of(target)
            if target_wing in SHARED or target == "agentpm" or target_wing == wing:
                continue
            if target_wing not in ALLOWED[wing]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


@pytest.mark.parametrize("forbidden", ["typer", "rich", "click", "agentpm.cli"])
def test_the_core_never_imports_the_cli_or_its_libraries(forbidden):
    offenders = []
    for module, path in MODULES.items():
        if wing_of(module) == "cli" or module in ("agentpm.__main__",):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == forbidden or name.startswith(forbidden + ".") for name in names):
                offenders.append(module)
    assert not offenders, offenders


def test_no_module_imports_a_private_name_from_another():
    offenders = [
        f"{module}: {target}.{name}"
        for module, path in MODULES.items()
        for target, names in imports_of(path)
        for name in names
        if name.startswith("_") and name != "__version__" and target != module
    ]
    assert not offenders, offenders


def test_no_import_cycle_between_modules():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = set()
        for target, names in imports_of(path):
            # `from agentpm.cli import analysis` names a module: follow it, not the package.
            submodules = [f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES]
            targets.update(submodules or ([target] if target in MODULES else []))
        graph[module] = targets - {module, "agentpm"}
    # the package's own __init__ files re-export (agentpm.cli imports its command modules): not a cycle
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt.endswith(".__init__") or nxt == "agentpm.cli" and node.startswith("agentpm.cli."):
                continue
            if state.get(nxt) == 1:
                cycle.extend(trail + [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_commands_are_thin():
    from typer.main import get_command

    from agentpm.cli import app

    def commands(group):
        for name, command in getattr(group, "commands", {}).items():
            yield from commands(command) if hasattr(command, "commands") else [(name, command)]

    long = []
    for name, command in commands(get_command(app)):
        source = inspect.getsource(command.callback)
        body = source.split('"""')[-1] if '"""' in source else source
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) > 30:
            long.append(f"{name}: {len(lines)} lines after its docstring")
    assert not long, long


def test_one_format_option_definition():
    definitions = [
        path.name
        for path in (PACKAGE / "cli").glob("*.py")
        if '"--format"' in path.read_text(encoding="utf-8")
    ]
    assert definitions == ["output.py"]


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if not found:
        pytest.fail("ruff is not installed; it is in the test extras: pip install -e '.[test]'")
    return [found]


def test_ruff_lint_is_clean():
    proc = subprocess.run(
        [*_ruff(), "check", "agentpm", "tests", "bench"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_applied():
    proc = subprocess.run(
        [*_ruff(), "format", "--check", "agentpm", "tests", "bench"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
