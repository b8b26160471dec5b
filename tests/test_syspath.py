"""The target interpreter and its sys.path (issue 12 §1): default choice, hostile output, the
visibility model against the cases it names."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ns_strip import syspath
from ns_strip.crossentry import (
    MODULE,
    NAMESPACE,
    PKG_RESOURCES,
    PKGUTIL,
    REGULAR,
    Presence,
    visible_entries,
)
from ns_strip.errors import BadInputError


def fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("body, problem", [
    ("echo 'not json'", "printed something other than its sys.path"),
    ("echo '{\"version\": [3], \"path\": [], \"site_dirs\": [], \"implementation\": \"x\"}'",
     "printed something other than its sys.path"),
    ("echo oops >&2; exit 7", "exited with status 7"),
    ("head -c 2000000 /dev/zero | tr '\\0' x", "printed something other than its sys.path"),
])
def test_hostile_interpreter_output_is_bad_input(tmp_path, body, problem):
    with pytest.raises(BadInputError) as caught:
        syspath.query(fake_python(tmp_path, body))
    assert problem in str(caught.value)


def test_interpreter_that_hangs_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(syspath, "WAIT_SECONDS", 1)
    with pytest.raises(BadInputError, match="within 1 s"):
        syspath.query(fake_python(tmp_path, "exec sleep 30"))


def test_missing_interpreter_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="cannot run it"):
        syspath.query(str(tmp_path / "nope"))


def test_default_python_from_the_path(tmp_path):
    assert syspath.default_python("/usr/lib/python3/dist-packages", "/somewhere")[0] == "/usr/bin/python3"
    venv = tmp_path / "v"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = venv / "bin" / "python3.11"
    python.write_text("")
    python.chmod(0o755)
    site = venv / "lib" / "python3.11" / "site-packages"
    assert syspath.default_python(str(site), None) == (str(python), f"the venv {venv} the site dir belongs to")
    # under --root a pyvenv.cfg is the staged image's, not the build machine's: the venv rule is off
    # and the interpreter comes from the path's prefix only
    assert "venv" not in syspath.default_python(str(site), "/")[1]
    assert syspath.default_python(str(tmp_path / "random"), None) == (sys.executable, "the interpreter running ns-strip")


def test_pth_path_lines_follow_site_py(tmp_path):
    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    (site / "b").mkdir()
    (site / "2.pth").write_text("b\nimport os\n")
    (site / "1.pth").write_text("# c\na\nmissing\n\n")
    (site / ".hidden.pth").write_text("b\n")
    os.mkfifo(site / "3.pth")
    assert syspath.pth_path_lines(str(site)) == [str(site / "a"), str(site / "b")]


def p(entry: str, kind: str | None, nspkg: str | None = None) -> Presence:
    return Presence(entry, kind, f"/{entry}/ns", nspkg)


@pytest.mark.parametrize("presences, visible, hider", [
    # PEP 420 everywhere: every portion
    ([p("A", NAMESPACE), p("B", NAMESPACE)], {"A", "B"}, None),
    # a regular package wins outright, even after the portion
    ([p("A", NAMESPACE), p("B", REGULAR)], {"B"}, "the regular package"),
    # pkgutil collects every directory of the name
    ([p("A", NAMESPACE), p("B", PKGUTIL)], {"A", "B"}, None),
    # pkg_resources collects only portions with an __init__.py
    ([p("A", NAMESPACE), p("B", PKG_RESOURCES), p("C", PKGUTIL)], {"B", "C"}, "the pkg_resources-style declaration"),
    # a -nspkg.pth line decides __path__ at start-up: its directories only
    ([p("A", NAMESPACE), p("B", NAMESPACE, "/B/x-nspkg.pth")], {"B"}, "the setuptools namespace loader"),
    ([p("A", PKG_RESOURCES, "/A/a-nspkg.pth"), p("B", NAMESPACE, "/B/b-nspkg.pth")], {"A", "B"},
     "the setuptools namespace loader"),
    # a loader line for a directory that is not there makes nothing
    ([p("A", NAMESPACE), p("B", None, "/B/x-nspkg.pth")], {"A"}, None),
])
def test_visibility_model(presences, visible, hider):
    seen, decided = visible_entries(presences)
    assert seen == visible
    assert (decided.how if decided else None) == hider


def test_pth_lines_ignored_from_3_18():
    presences = [p("A", NAMESPACE), p("B", NAMESPACE, "/B/x-nspkg.pth")]
    assert visible_entries(presences, runs_pth_imports=False) == ({"A", "B"}, None)
    assert visible_entries([p("A", MODULE)], runs_pth_imports=False)[0] == {"A"}
