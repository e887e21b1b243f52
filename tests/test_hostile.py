"""Hostile and odd files, generated at test time: nothing hangs, nothing aborts the run, no
file is lost or replaced, every clean file is still reported, and no "could not process" or
"internal error" escapes for any of them (those messages are kept for bugs in agentpm)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli, run_subprocess, write

CLEAN = {
    f"clean-{n}.md": f"""---
id: CLEAN-{n}
title: Clean report {n} about a renamed refund field
date: 2026-08-0{n}
category: tool-api-drift
---
## Summary
The ledger API renamed `amount` to `transaction_amount` and the refund agent read zero for every
refund until the tool wrapper was updated to the new field name.
"""
    for n in (1, 2, 3)
}
COMMANDS = [
    ("validate",),
    ("list", "--format", "json"),
    ("classify", "--format", "json"),
    ("trends", "--no-cache", "--format", "json"),
    ("report", "--no-cache", "--quarter", "2026Q3", "--as-of", "2026-10-01", "--format", "json"),
    ("lint", "--format", "json"),
]
BUGS = ("internal error", "could not process", "Traceback")


def _front(body: str) -> str:
    return f"---\n{body}\n---\n## Summary\nA report with one hostile field and enough words to classify it.\n"


def _nested(folder: Path) -> Path:
    deep = folder
    for _ in range(1500):  # one level at a time: Path.mkdir(parents=True) recurses per level
        deep = deep / "d"
        os.mkdir(deep)
    return write(deep, "deep.md", _front("title: Deep down\ndate: 2026-08-04"))


# name -> (writer, exit code of validate, the hostile file is still an incident)
HOSTILE = {
    "huge-int": (lambda f: write(f, "h.md", _front("title: Huge\nid: " + "9" * 4301)), 2, False),
    "date-range-edge": (
        lambda f: write(f, "h.md", _front("title: Edge\ndate: 9999-12-31T23:59:59-12:00")),
        1,
        True,
    ),
    "date-year-one": (
        lambda f: write(f, "h.md", _front("title: Year one\ndate: 0001-01-01T00:00:00+05:00")),
        1,
        True,
    ),
    "binary": (lambda f: write(f, "h.md", b"\x00\x01\x02binary"), 2, False),
    "utf16": (lambda f: write(f, "h.md", "title: x".encode("utf-16")), 2, False),
    "alias-bomb": (
        lambda f: write(
            f,
            "h.yaml",
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\ntitle: bomb\n",
        ),
        2,
        False,
    ),
    "python-tag": (
        lambda f: write(f, "h.yaml", "title: !!python/object/apply:os.system ['true']\n"),
        2,
        False,
    ),
    "slow-heading": (lambda f: write(f, "h.md", _front("title: Slow") + "# a" + " " * 8000 + "b\n"), 0, True),
    "slow-meta": (
        lambda f: write(f, "h.md", "# Slow meta\nCategory: a" + " " * 50000 + "b\n\nSome prose.\n"),
        1,
        False,
    ),
    "deep-folders": (_nested, 0, True),
    "escape-title": (
        lambda f: write(f, "h.md", _front('title: "Evil \\e[2J\\e]8;;http://x\\e\\\\link\\u009b31m"')),
        0,
        True,
    ),
    "formula-title": (
        lambda f: write(f, "h.md", _front('title: "=HYPERLINK(\\"http://x\\",\\"y\\")"')),
        0,
        True,
    ),
    "huge-file": (lambda f: write(f, "h.md", _front("title: Huge") + "x" * (6 * 1024 * 1024)), 2, False),
    "empty": (lambda f: write(f, "h.md", ""), 1, False),
}


def _folder(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / "incidents"
    for name, text in CLEAN.items():
        write(folder, name, text)
    HOSTILE[case][0](folder)
    return folder


def _run(args: tuple[str, ...], folder: Path, cwd: Path) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    result = run_cli(*args, str(folder), cwd=cwd)
    return result.code, result.stdout, result.stderr, time.perf_counter() - started


def _remove_tree(folder: Path) -> None:
    """Delete a tree deepest-first with an explicit stack (shutil.rmtree recurses per level, and
    pytest's own clean-up would hit the recursion limit on the 1,500-level case)."""
    order, stack = [], [str(folder)]
    while stack:
        current = stack.pop()
        order.append(current)
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
    for current in reversed(order):
        os.rmdir(current)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_file_costs_only_itself(case, tmp_path, request):
    folder = _folder(tmp_path, case)
    request.addfinalizer(lambda: _remove_tree(folder))
    before = _snapshot(folder)
    expected_code, still_incident = HOSTILE[case][1], HOSTILE[case][2]
    for args in COMMANDS:
        code, out, err, seconds = _run(args, folder, tmp_path)
        assert seconds < 20, (case, args, seconds)
        assert not any(bug in out + err for bug in BUGS), (case, args, err)
        assert "\x1b" not in out and "\x9b" not in out, (case, args)
        if args[0] == "validate":
            assert code == expected_code, (case, err)
            if expected_code:
                lines = [
                    line for line in out.splitlines() if "/h." in line or "h.md" in line or "h.yaml" in line
                ]
                assert lines and all("\n" not in line for line in lines), (case, out)
        if args[0] == "list":
            ids = {row["id"] for row in json.loads(out)} if out.strip() else set()
            assert {"CLEAN-1", "CLEAN-2", "CLEAN-3"} <= ids, (case, err)
            # the hostile file has no id of its own: listed, it adds None to the three clean ids
            assert (None in ids) == still_incident, (case, ids)
        if args[0] == "classify":
            rows = json.loads(out)
            assert sum(1 for row in rows if row["path"].endswith(tuple(CLEAN))) == 3, (case, err)
        if args[0] in ("list", "classify", "trends", "report"):
            # every reading command reports the hostile file the way validate does
            assert code == expected_code and out.strip(), (case, args, err)
    assert _snapshot(folder) == before, f"{case}: a command changed a file"


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes (an explicit stack: os.walk and Path.rglob recurse once per level)."""
    found, stack = {}, [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    with open(entry.path, "rb") as stream:
                        found[entry.path] = stream.read()
    return found


def test_csv_cells_cannot_run_as_formulas(tmp_path):
    folder = _folder(tmp_path, "formula-title")
    out = run_cli("list", str(folder), "--format", "csv").stdout
    assert "'=HYPERLINK" in out and ',"=HYPERLINK' not in out and ",=HYPERLINK" not in out


def test_undecodable_file_name_is_listed_not_fatal(tmp_path):
    folder = tmp_path / "incidents"
    for name, text in CLEAN.items():
        write(folder, name, text)
    raw = os.path.join(os.fsencode(folder), b"bad-\xff-name.md")
    with open(raw, "wb") as stream:
        stream.write(_front("title: Odd name\nid: ODD-1\ndate: 2026-08-05").encode())
    for args in COMMANDS:
        result = run_subprocess(*args, str(folder), cwd=tmp_path)
        assert result.code in (0, 1), (args, result.stderr)
        assert not any(bug in result.stdout + result.stderr for bug in BUGS), (args, result.stderr)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_fifos_and_devices_are_refused_unread(kind, tmp_path):
    folder = tmp_path / "incidents"
    for name, text in CLEAN.items():
        write(folder, name, text)
    special = folder / "special.md"
    if kind == "fifo":
        os.mkfifo(special)
    else:
        special.symlink_to("/dev/zero")
    for args in COMMANDS:
        started = time.perf_counter()
        result = run_subprocess(*args, str(folder), cwd=tmp_path)
        assert time.perf_counter() - started < 30
        if args[0] in ("validate", "list", "classify"):
            assert result.code == 2, (args, result.stderr)
            assert "special.md: is a" in result.stdout + result.stderr
    assert stat.S_ISFIFO(special.lstat().st_mode) if kind == "fifo" else special.is_symlink()


def test_output_onto_a_fifo_or_device_is_refused_even_with_force(tmp_path):
    fifo = tmp_path / "out.html"
    os.mkfifo(fifo)
    result = run_subprocess(
        "report",
        "corpus",
        "--quarter",
        "2026Q3",
        "--as-of",
        "2026-10-01",
        "-o",
        str(fifo),
        "--force",
        "--no-cache",
    )
    assert result.code == 2 and "FIFO" in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    stdout = run_subprocess("schema", "-o", "-")
    assert stdout.code == 0 and stdout.stdout.startswith("{")


# -- writes ---------------------------------------------------------------------------------


def _one(tmp_path: Path, text: str, name: str = "one.md") -> Path:
    return write(tmp_path / "w", name, text)


def _classify_write(path: Path) -> tuple[int, str]:
    result = run_cli("classify", str(path), "--write", "--format", "json")
    return result.code, result.stderr


def test_write_follows_a_symlink_and_keeps_it(tmp_path):
    target = _one(tmp_path, CLEAN["clean-1.md"])
    link = tmp_path / "link.md"
    link.symlink_to(target)
    code, err = _classify_write(link)
    assert code == 0, err
    assert link.is_symlink() and "prediction:" in target.read_text()


def test_write_keeps_mode_owner_and_extended_attributes(tmp_path):
    path = _one(tmp_path, CLEAN["clean-1.md"])
    os.chmod(path, 0o640)
    try:
        os.setxattr(path, "user.agentpm-test", b"kept")
        has_xattr = True
    except OSError:
        has_xattr = False
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    code, err = _classify_write(path)
    assert code == 0, err
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (65534, 65534)
    if has_xattr:
        assert os.getxattr(path, "user.agentpm-test") == b"kept"


def test_write_refuses_to_break_a_hard_link(tmp_path):
    path = _one(tmp_path, CLEAN["clean-1.md"])
    other = tmp_path / "other-name.md"
    os.link(path, other)
    before = path.read_bytes()
    code, err = _classify_write(path)
    assert code == 1 and "hard links" in err
    assert path.read_bytes() == before and os.stat(path).st_ino == os.stat(other).st_ino


@pytest.mark.parametrize(
    "text,name",
    [
        (
            CLEAN["clean-1.md"].replace(
                "category: tool-api-drift\n", "# a note the user wrote\n  # indented\n"
            ),
            "c.md",
        ),
        (CLEAN["clean-1.md"].replace("date:", '"prediction": {category: other}\ndate:'), "q.md"),
        (CLEAN["clean-1.md"].replace("\n", "\r"), "cr.md"),
        (
            "title: Ends with a document marker, as YAML allows\ndate: 2026-08-01\nsummary: The ledger API "
            "renamed a field and the refund agent read zero for every refund it issued.\n...\n",
            "dots.yaml",
        ),
    ],
    ids=["comments", "quoted-key", "lone-cr", "yaml-end-marker"],
)
def test_write_edits_only_the_prediction(tmp_path, text, name):
    path = _one(tmp_path, text, name)
    code, err = _classify_write(path)
    assert code == 0, err
    updated = path.read_bytes().decode()
    assert updated.count("prediction") == 1
    for line in text.replace("\r", "\n").split("\n"):
        if "prediction" not in line:
            assert line in updated.replace("\r", "\n"), line
    assert run_cli("validate", str(path)).code == 0


def test_sigterm_leaves_no_temporary_file(tmp_path):
    folder = tmp_path / "many"
    for number in range(400):
        write(folder, f"r{number:03d}.md", CLEAN["clean-1.md"].replace("CLEAN-1", f"R-{number}"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentpm", "classify", str(folder), "--write", "--format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not [path for path in folder.iterdir() if path.name.endswith(".tmp")]
    # Every file still a valid record: one validate run over all of them (400 runs took seconds).
    checked = run_cli("validate", *sorted(str(path) for path in folder.iterdir()))
    assert checked.code == 0 and "400 files checked: all valid" in checked.stderr


def test_concurrent_new_runs_take_distinct_ids(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentpm",
                "new",
                f"Race number {n}",
                "--dir",
                str(tmp_path),
                "--date",
                "2026-08-01",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    ids = [
        line.split(":", 1)[1].strip()
        for path in tmp_path.glob("*.md")
        for line in path.read_text().splitlines()
        if line.startswith("id:")
    ]
    assert len(ids) == 6 and len(set(ids)) == 6, ids


# -- models and templates -------------------------------------------------------------------


def _model(tmp_path: Path, change) -> Path:
    model = tmp_path / "model"
    shutil.copytree(REPO / "agentpm" / "models" / "default", model)
    manifest = json.loads((model / "manifest.json").read_text())
    change(model, manifest)
    if (model / "weights.npz").exists() and "weights_sha256" in manifest:
        manifest["weights_sha256"] = hashlib.sha256((model / "weights.npz").read_bytes()).hexdigest()
    (model / "manifest.json").write_text(json.dumps(manifest))
    return model


def _nan_weights(model: Path, manifest: dict) -> None:
    with np.load(model / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["coef"] = arrays["coef"].copy()
    arrays["coef"][0, 0] = np.nan
    np.savez(model / "weights.npz", **arrays)


def _lying_header(model: Path, manifest: dict) -> None:
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (6, 100_000_000)}
    )
    with zipfile.ZipFile(model / "weights.npz", "w") as archive:
        archive.writestr("coef.npy", header.getvalue() + b"\0" * 1000)


BAD_MODELS = {
    "nan-weights": _nan_weights,
    "zero-temperature": lambda model, manifest: manifest["classifier"].update(temperature=0),
    "empty-weights": lambda model, manifest: (model / "weights.npz").write_bytes(b""),
    "no-checksum": lambda model, manifest: manifest.pop("weights_sha256"),
    "lying-header": _lying_header,
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_bad_model_is_a_clean_error_never_a_prediction(case, tmp_path):
    model = _model(tmp_path, BAD_MODELS[case])
    incident = write(tmp_path, "one.md", CLEAN["clean-1.md"])
    started = time.perf_counter()
    result = run_cli("classify", str(incident), "--model", str(model), "--format", "json")
    assert time.perf_counter() - started < 10
    assert result.code == 2 and result.stdout == "", (case, result.stdout[:200])
    assert result.stderr.startswith("agentpm: error:") and result.stderr.count("\n") == 1, result.stderr
    assert not any(bug in result.stderr for bug in BUGS)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'A' * 10**10 }}",
        "{{ 'A' * 100000 * 100000 }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% for i in range(9000) %}{{ 'x' * 1000 }}{% endfor %}",
        "{% include 'passwd.j2' %}",
    ],
    ids=["power", "repeat", "range", "output-size", "symlink-include"],
)
def test_user_templates_are_bounded_and_contained(template, tmp_path):
    folder = tmp_path / "templates"
    write(folder, "postmortem.md.j2", template)
    (folder / "passwd.j2").symlink_to("/etc/passwd")
    started = time.perf_counter()
    result = run_cli("new", "Bounded", "--dir", str(tmp_path / "out"), env={"AGENTPM_TEMPLATES": str(folder)})
    assert time.perf_counter() - started < 15
    assert result.code == 2 and "cannot render the post-mortem template" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.md"))
