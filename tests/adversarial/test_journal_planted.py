"""Planted journals: a ``.ns-strip-journal/`` that ns-strip did not write (shipped by a wheel,
left by a build system) must never make a recovery act outside the site dir. Each one that is
not a journal ns-strip could have left is refused (exit 3, one line naming the journal), and
nothing changes, inside the root or out."""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

import pytest
from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nstree import PKGUTIL_INIT, add_distribution

from ns_strip.cli import main
from ns_strip.journal import JOURNAL_DIR

SITE = "/usr/lib/python3/dist-packages"


def make_root(where: Path) -> tuple[Path, Path]:
    """A staging root with one site dir holding a strippable namespace, and the site dir."""
    root = where / "root"
    site = root / SITE.lstrip("/")
    add_distribution(site, "zope.event", {"zope/__init__.py": PKGUTIL_INIT, "zope/event/__init__.py": ""})
    return root, site


@pytest.fixture
def planted(tmp_path: Path):
    root, site = make_root(tmp_path)
    sentinel = Sentinel(tmp_path / "outside")
    journal = site / JOURNAL_DIR
    (journal / "old").mkdir(parents=True)
    (journal / "new").mkdir()
    return root, site, journal, sentinel


def assert_refused(root: Path, sentinel: Sentinel, *args: str) -> str:
    """Run strip (or ARGS) on the planted root: exit 3 naming the journal, nothing changed."""
    before = fingerprint(root)
    result = run_limited(*(args or ("strip", "--root", str(root), SITE)))
    assert_clean_exit(result, {3})
    assert JOURNAL_DIR in result.stderr and "remove it by hand" in result.stderr, result.stderr
    assert fingerprint(root) == before
    sentinel.assert_unchanged()
    return result.stderr


def plant_plan(journal: Path, steps: object) -> None:
    (journal / "plan.json").write_text(json.dumps(steps))


def test_absolute_path_is_refused(planted):
    root, _, journal, sentinel = planted
    plant_plan(journal, [{"action": "remove", "path": str(sentinel.path / "precious.txt")}])
    (journal / "old" / "0").write_bytes(b"overwrite the outside\n")
    assert "absolute" in assert_refused(root, sentinel)


@pytest.mark.parametrize("action", ["remove", "replace", "rmdir"])
def test_dotdot_path_is_refused(planted, action):
    root, site, journal, sentinel = planted
    climb = os.path.relpath(sentinel.path / "precious.txt", site)
    plant_plan(journal, [{"action": action, "path": climb}])
    (journal / "old" / "0").write_bytes(b"overwrite the outside\n")
    (journal / "new" / "0").write_bytes(b"new\n")
    assert "'..'" in assert_refused(root, sentinel)


def test_move_target_out_is_refused(planted):
    root, site, journal, sentinel = planted
    # A rollback moves target back to path: here, a file outside into the site dir.
    climb = os.path.relpath(sentinel.path / "precious.txt", site)
    plant_plan(journal, [{"action": "move", "path": "stolen.txt", "target": climb}])
    assert_refused(root, sentinel)


def test_symlinked_journal_dir_is_refused(tmp_path):
    root, site = make_root(tmp_path)
    sentinel = Sentinel(tmp_path / "outside")
    elsewhere = tmp_path / "elsewhere-journal"
    (elsewhere / "old").mkdir(parents=True)
    (elsewhere / "old" / "0").write_bytes(b"moved in from outside\n")
    plant_plan(elsewhere, [{"action": "remove", "path": "planted.py"}])
    os.symlink(elsewhere, site / JOURNAL_DIR)
    outside_before = fingerprint(elsewhere)
    assert "symbolic link" in assert_refused(root, sentinel)
    assert fingerprint(elsewhere) == outside_before


@pytest.mark.parametrize("sub", ["old", "new"])
def test_symlinked_backup_dir_is_refused(planted, sub):
    root, _, journal, sentinel = planted
    shutil.rmtree(journal / sub)
    os.symlink(sentinel.path, journal / sub)
    plant_plan(journal, [{"action": "replace", "path": "zope/__init__.py"}])
    assert_refused(root, sentinel)


def test_symlinked_component_is_refused(planted):
    root, site, journal, sentinel = planted
    os.symlink(sentinel.path, site / "evil")
    plant_plan(journal, [{"action": "remove", "path": "evil/precious.txt"}])
    (journal / "old" / "0").write_bytes(b"overwrite the outside\n")
    assert "link" in assert_refused(root, sentinel)


def test_symlinked_component_of_a_move_is_refused(planted):
    root, site, journal, sentinel = planted
    os.symlink(sentinel.path, site / "evil")
    plant_plan(journal, [{"action": "move", "path": "evil/taken.txt", "target": "zope/event/__init__.py"}])
    assert_refused(root, sentinel)


def test_moved_aside_link_pointing_out_is_refused(planted):
    root, _, journal, sentinel = planted
    plant_plan(journal, [{"action": "remove", "path": "zope/new.py"}])
    os.symlink(sentinel.path / "precious.txt", journal / "old" / "0")
    assert "leaves the site dir" in assert_refused(root, sentinel)


@pytest.mark.parametrize("special", ["fifo", "file", "dangling-link"])
def test_journal_that_is_not_a_directory_is_refused(tmp_path, special):
    root, site = make_root(tmp_path)
    sentinel = Sentinel(tmp_path / "outside")
    journal = site / JOURNAL_DIR
    if special == "fifo":
        os.mkfifo(journal)
    elif special == "file":
        journal.write_text("[]")
    else:
        os.symlink(tmp_path / "nowhere", journal)
    assert_refused(root, sentinel)


DAMAGED_PLANS = [
    ("unknown key", b'[{"action": "remove", "path": "zope/__init__.py", "evil": 1}]'),
    ("not a list", b'{"action": "remove", "path": "zope/__init__.py"}'),
    ("non-string path", b'[{"action": "remove", "path": 7}]'),
    ("null", b"null"),
    ("null step", b"[null]"),
    ("null path", b'[{"action": "remove", "path": null}]'),
    ("unknown action", b'[{"action": "chmod", "path": "zope/__init__.py"}]'),
    ("boolean mode", b'[{"action": "rmdir", "path": "zope", "mode": true}]'),
    ("huge mode", b'[{"action": "rmdir", "path": "zope", "mode": 99999999999}]'),
    ("not normal", b'[{"action": "remove", "path": "zope/./__init__.py"}]'),
    ("inside the journal", b'[{"action": "remove", "path": ".ns-strip-journal/plan.json"}]'),
    ("truncated", b'[{"action": "remove", "pa'),
    ("not utf-8", b'[{"action": "remove", "path": "\xff"}]'),
    ("NaN", b"[NaN]"),
    ("deep", b"[" * 100_000 + b"]" * 100_000),
    ("long number", b"[" + b"9" * 10_000 + b"]"),
    ("empty", b""),
]


# Named by the case alone: an id holding 200 kB of brackets would reach every child's
# environment through PYTEST_CURRENT_TEST and exceed the kernel's limit for one variable.
@pytest.mark.parametrize("name, content", DAMAGED_PLANS, ids=[name for name, _ in DAMAGED_PLANS])
def test_damaged_plan_is_refused(planted, name, content):
    root, _, journal, sentinel = planted
    (journal / "plan.json").write_bytes(content)
    assert "plan.json" in assert_refused(root, sentinel)


def test_huge_plan_is_refused_within_bounds(planted):
    root, _, journal, sentinel = planted
    step = json.dumps({"action": "remove", "path": "zope/x.py"}) + ","
    with open(journal / "plan.json", "w") as handle:
        handle.write("[" + step * ((9 << 20) // len(step)) + "{}]")
    assert "plan.json" in assert_refused(root, sentinel)


def test_many_small_objects_stop_at_the_first(planted):
    """Eight MiB of ``{}``: refused at the first object, within the memory bound."""
    root, _, journal, sentinel = planted
    (journal / "plan.json").write_bytes(b"[" + b"{}," * ((8 << 20) // 3 - 1) + b"{}]")
    assert_refused(root, sentinel)


@pytest.mark.parametrize("special", ["fifo", "link", "directory"])
def test_plan_that_is_not_a_regular_file_is_refused(planted, special):
    root, _, journal, sentinel = planted
    plan = journal / "plan.json"
    if special == "fifo":
        os.mkfifo(plan)
    elif special == "link":
        os.symlink(sentinel.path / "precious.txt", plan)
    else:
        plan.mkdir()
    assert_refused(root, sentinel)


@pytest.mark.parametrize("entry", ["unexpected-file", "old/07", "old/5", "old/dir", "new/link"])
def test_unexpected_entries_are_refused(planted, entry):
    root, _, journal, sentinel = planted
    plant_plan(journal, [{"action": "remove", "path": "zope/gone.py"}])
    if entry == "old/dir":
        (journal / "old" / "0").mkdir()
    elif entry == "new/link":
        os.symlink(sentinel.path / "precious.txt", journal / "new" / "0")
    else:
        (journal / entry).write_bytes(b"x")
    assert_refused(root, sentinel)


@pytest.mark.parametrize("command", ["dry-run", "ext-rename", "import-names-write"])
def test_other_changing_commands_refuse_a_planted_journal(planted, command):
    root, site, journal, sentinel = planted
    plant_plan(journal, [{"action": "remove", "path": "../../../../../outside/precious.txt"}])
    args = {
        "dry-run": ("strip", "--dry-run", "--root", str(root), SITE),
        "ext-rename": ("ext", "--rename", str(site)),
        "import-names-write": ("import-names", "--write", "--root", str(root), SITE),
    }[command]
    assert_refused(root, sentinel, *args)


def test_a_journal_ns_strip_could_have_left_is_recovered_inside_only(planted):
    """The control: a well-formed journal whose steps stay inside is rolled back as usual."""
    root, site, journal, sentinel = planted
    plant_plan(journal, [{"action": "remove", "path": "zope/__init__.py"}])
    os.rename(site / "zope" / "__init__.py", journal / "old" / "0")
    result = run_limited("strip", "--root", str(root), SITE)
    assert_clean_exit(result, {0})
    assert "Recovered an interrupted strip" in result.stdout and "rolled back" in result.stdout
    assert "Stripping pkgutil-style namespace zope" in result.stdout  # put back, then stripped
    assert not (site / "zope" / "__init__.py").exists() and not journal.exists()
    sentinel.assert_unchanged()


# -- generated plans ------------------------------------------------------------------------------

_NAMES = st.sampled_from(["zope", "__init__.py", "event", "..", ".", "", "evil", "x.py", JOURNAL_DIR,
                          "old", "0", "precious.txt", "a\0b", "sub"])
_PATHS = st.one_of(
    st.lists(_NAMES, min_size=1, max_size=4).map("/".join),
    st.lists(_NAMES, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    st.sampled_from(["zope/__init__.py", "zope/event/__init__.py", "evil/precious.txt", "zope"]),
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_STEPS = st.fixed_dictionaries(
    {"action": st.sampled_from(["remove", "replace", "move", "rmdir"]), "path": _PATHS},
    optional={"mode": st.one_of(st.none(), st.integers(0, 0o7777), _VALUES), "target": _PATHS,
              "extra": _VALUES},
)
_PLANS = st.one_of(st.lists(_STEPS, max_size=5), _VALUES)


def _acceptable(plan: object) -> bool:
    """An independent statement of what a recovery may act on: a list of steps whose every
    path is relative and normal, stays inside, avoids the journal and the linked ``evil``."""
    if not isinstance(plan, list):
        return False
    for step in plan:
        if not isinstance(step, dict) or set(step) - {"action", "path", "mode", "target"}:
            return False
        for key in ("path", "target"):
            value = step.get(key)
            if key == "target" and value is None:
                continue
            if not isinstance(value, str) or not value or value.startswith("/") or "\0" in value:
                return False
            parts = value.split("/")
            if any(part in ("", ".", "..") for part in parts) or parts[0] in (JOURNAL_DIR,):
                return False
            if parts[0] == "evil" and len(parts) > 1:
                return False  # through the link
            if posixpath.normpath(value) != value:
                return False
    return True


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=_PLANS, moved_aside=st.lists(st.integers(0, 5), max_size=3))
def test_generated_plans_never_act_outside(tmp_path, plan, moved_aside):
    where = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        root, site = make_root(where)
        sentinel = Sentinel(where / "outside")
        os.symlink(sentinel.path, site / "evil")
        journal = site / JOURNAL_DIR
        (journal / "old").mkdir(parents=True)
        for index in moved_aside:
            (journal / "old" / str(index)).write_bytes(b"moved aside\n")
        plant_plan(journal, plan)
        before = fingerprint(root)
        out, err = io.StringIO(), io.StringIO()
        code = main(["strip", "--root", str(root), SITE], stdout=out, stderr=err)
        event(f"exit {code}")
        sentinel.assert_unchanged()
        assert "Traceback" not in err.getvalue()
        if code == 3:
            assert len(err.getvalue().strip().splitlines()) == 1 and JOURNAL_DIR in err.getvalue()
            assert fingerprint(root) == before
        else:
            assert code in (0, 1, 4), err.getvalue()
            assert _acceptable(plan), (plan, code, err.getvalue())
    finally:
        shutil.rmtree(where)


def test_many_deep_steps_are_checked_in_bounded_time(planted):
    """Thousands of steps as deep as a plan may be, through a real chain of directories: the
    checks walk each directory once, and the run ends well within the timeout."""
    from ns_strip.journalplan import MAX_PATH_DEPTH

    root, site, journal, sentinel = planted
    # Deep, as a path-based set-up can make it (pathlib recurses per directory in mkdir).
    chain = "/".join(["a"] * min(MAX_PATH_DEPTH - 1, 400))
    (site / chain).mkdir(parents=True)
    plant_plan(journal, [{"action": "rmdir", "path": f"{chain}/d{index}", "mode": 0o755} for index in range(3000)])
    result = run_limited("strip", "--root", str(root), SITE, timeout=60)
    assert_clean_exit(result, {0})
    assert "rolled back" in result.stdout
    assert len(list((site / chain).iterdir())) == 3000  # the plan was inside: recreated as it says
    sentinel.assert_unchanged()
