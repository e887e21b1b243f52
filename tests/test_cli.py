"""The CLI as a user meets it: help for every command, README coverage, startup weight."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import GOOD_MD, REPO, write


def _commands():
    import typer.main

    from agentpm.cli import app

    root = typer.main.get_command(app)
    found = []

    def walk(group, prefix):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, prefix + [name])
            else:
                found.append((" ".join(prefix + [name]), command))

    walk(root, [])
    return found


def test_every_command_has_help_with_an_example_and_is_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = _commands()
    assert len(commands) >= 3
    for name, command in commands:
        assert command.help and "Example: agentpm " in command.help, (
            f"{name} needs a docstring with an example"
        )
        assert f"agentpm {name}" in readme, f"README must document `agentpm {name}`"


@pytest.mark.parametrize("name", ["validate", "list", "taxonomy show", "schema"])
def test_help_runs(cli, name):
    result = cli(*name.split(), "--help")
    assert result.code == 0 and "Example: agentpm" in result.stdout


def test_version_and_bare_invocation(cli):
    from agentpm import __version__

    assert cli("--version").stdout.strip() == f"agentpm {__version__}"
    bare = cli()
    assert bare.code in (0, 2) and "validate" in bare.stdout + bare.stderr


HEAVY = ("pandas", "sklearn", "matplotlib", "scipy", "numpy")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["validate", "{path}"],
        ["list", "{path}"],
        ["taxonomy", "show"],
        # counting labelled incidents needs no model, numpy or data-frame library (pandas alone
        # was a quarter of a second of every trends and report run, numpy 40 ms to hash the model)
        ["trends", "{path}", "--no-cache", "--format", "json"],
        ["report", "{path}", "--no-cache", "--format", "json", "--as-of", "2026-12-01"],
    ],
)
def test_light_commands_do_not_import_heavy_libraries(tmp_path, args):
    path = write(tmp_path, "a.md", GOOD_MD)
    argv = [arg.replace("{path}", str(path)) for arg in args]
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['agentpm', *{argv!r}]\n"
        "try:\n    runpy.run_module('agentpm', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_list_json_has_the_contract_keys(cli, tmp_path):
    write(tmp_path, "a.md", GOOD_MD)
    rows = json.loads(cli("list", str(tmp_path), "--format", "json").stdout)
    assert {"path", "id", "title", "date", "severity", "category"} <= set(rows[0])
    assert rows[0]["date"] == "2026-03-02T09:00:00+01:00"


def test_list_csv_and_table(cli, tmp_path):
    write(tmp_path, "a.md", GOOD_MD)
    csv_out = cli("list", str(tmp_path), "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("path,id,title,date,severity")
    assert "INC-1" in csv_out[1]
    table = cli("list", str(tmp_path)).stdout
    assert "INC-1" in table and "tool-api-drift" in table


def test_folder_walk_skips_readme_and_hidden(cli, tmp_path):
    write(tmp_path, "a.md", GOOD_MD)
    write(tmp_path, "README.md", "# About this corpus\n")
    write(tmp_path, ".drafts/x.md", "broken")
    write(tmp_path, "_templates/t.md", "broken")
    write(tmp_path, "notes.txt", "ignored")
    result = cli("validate", str(tmp_path))
    assert result.code == 0 and "1 files checked" in result.stderr


def test_taxonomy_show_formats(cli):
    data = json.loads(cli("taxonomy", "show", "--format", "json").stdout)
    assert data["version"] == "1.0" and len(data["categories"]) == 6
    one = cli("taxonomy", "show", "tool-api-drift")
    assert one.code == 0 and "Tool API drift" in one.stdout
    missing = cli("taxonomy", "show", "nope")
    assert (
        missing.code == 2
        and "unknown category 'nope'" in missing.stderr
        and "Traceback" not in missing.stderr
    )
