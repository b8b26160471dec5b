"""What the commands a package build runs import: start-up is paid by every ``ns-strip`` call.

``dataclasses`` (with inspect, ast, dis, tokenize), ``shutil`` (with bz2, lzma, fnmatch, which
argparse imports for every option it adds when its formatter is not told the width) and
``typing`` were a third of the start-up of ``ns-strip --version`` and ``ns-strip ext``. Each
command runs in a fresh interpreter here and reports the modules it ended with; the checks are
of modules, never of timings. See docs/benchmarks.rst ("Start-up of every command").
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ext_toolchain import build_elf
from nstree import PKGUTIL_INIT, add_distribution

# Runs the command line as the ns-strip script does (cli.main, in a fresh interpreter), then
# prints, on the last line of stderr, the modules it imported and its exit code.
_PROBE = """
import json, sys
from ns_strip import cli
sys.argv = ["ns-strip", *sys.argv[1:]]
try:
    code = cli.main()
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

# Never on the path of --version, ext or scan (the last three only through their costly
# imports: dataclasses brings inspect, which brings ast, dis and tokenize).
NEVER = {"dataclasses", "shutil", "inspect", "dis", "bz2", "lzma", "typing"}


def _modules(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """Exit code, the modules imported beyond what the interpreter and its site set-up import
    before any code runs (a ``.pth`` file of the system may import anything), and stdout."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    *_, last = result.stderr.splitlines() or [""]
    report = json.loads(last)
    return report["code"], set(report["modules"]) - _at_start(), result.stdout


_STARTED: list[set[str]] = []


def _at_start() -> set[str]:
    if not _STARTED:
        code = "import sys; print(' '.join(sys.modules))"
        shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        _STARTED.append(set(shown.stdout.split()))
    return _STARTED[0]


def _ext_tree(root: Path) -> Path:
    """A small tree like a built package's: a real extension, a namespace beside it."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    build_elf(root / "pkg" / f"spam{suffix}", "spam")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "ns" / "part").mkdir(parents=True)
    (root / "ns" / "part" / "__init__.py").write_text("")
    return root


def _site(root: Path) -> Path:
    add_distribution(root, "zope.foo", {"zope/__init__.py": PKGUTIL_INIT, "zope/foo/__init__.py": ""})
    return root


@pytest.mark.parametrize("columns", ["80", "120"])
def test_version_and_help_import_neither_dataclasses_nor_shutil(columns: str) -> None:
    code, modules, out = _modules("--version", env={"COLUMNS": columns})
    assert (code, out.split()[0]) == (0, "ns-strip")
    assert NEVER.isdisjoint(modules), sorted(NEVER & modules)
    code, modules, out = _modules("ext", "--help", env={"COLUMNS": columns})
    assert code == 0 and "--rename" in out
    assert NEVER.isdisjoint(modules), sorted(NEVER & modules)


def test_ext_imports_no_dataclasses_shutil_typing_pickle(tmp_path: Path) -> None:
    tree = _ext_tree(tmp_path / "tree")
    code, modules, out = _modules("ext", "--json", str(tree))
    assert code == 0
    [extension] = json.loads(out)["extensions"]
    assert extension["exported"] == ["spam"] and extension["format"] == "elf"
    assert "ns_strip.binfmt.elf" in modules  # the ELF reader ran
    assert NEVER.isdisjoint(modules), sorted(NEVER & modules)
    # One process (a small tree is never split): pickle and signal are forkmap's, only when it forks.
    assert {"pickle", "signal"}.isdisjoint(modules)


def test_scan_imports_no_dataclasses_shutil_typing(tmp_path: Path) -> None:
    site = _site(tmp_path / "site")
    code, modules, out = _modules("scan", "--json", str(site))
    assert code == 0
    [namespace] = json.loads(out)["namespaces"]
    assert (namespace["name"], namespace["style"]) == ("zope", "pkgutil")
    assert NEVER.isdisjoint(modules), sorted(NEVER & modules)


def test_strip_of_a_site_dir_imports_neither_installer_nor_packaging(tmp_path: Path) -> None:
    # What every package build runs (dh_ns_strip, the eclass): installer and packaging are for
    # wheels and for rewritten RECORD rows, not for a strip that only removes files.
    site = _site(tmp_path / "site")
    code, modules, out = _modules("strip", "--json", str(site))
    assert code == 0
    assert "zope/__init__.py" in json.loads(out)["removed"] and not (site / "zope" / "__init__.py").exists()
    assert {"installer", "packaging", "ns_strip.wheels.writer"}.isdisjoint(modules), sorted(
        m for m in modules if m.startswith(("installer", "packaging")))


def test_the_probe_sees_what_a_command_imports(tmp_path: Path) -> None:
    # The probe can fail: a command that does import the modules above is seen doing it
    # (--rename brings RECORD rewriting: installer and packaging, which use typing).
    tree = _ext_tree(tmp_path / "tree")
    code, modules, _ = _modules("ext", "--rename", "--dry-run", str(tree))
    assert code == 0
    assert "typing" in modules and "ns_strip.extrename" in modules
