"""All-or-nothing: kill -9 the strip at every step of its apply, then prove the tree is either
as it was or as it should be once recovered, and that the next run always finishes the job."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ns_strip import journal
from nstree import run_cli, run_module, snapshot
from test_scan import populated_site
from test_strip import assert_records_true


def without_journal(state: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in state.items() if not k.startswith(journal.JOURNAL_DIR)}


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[Path, dict[str, object], dict[str, object]]:
    """A pristine tree, its snapshot, and the snapshot of the same tree stripped cleanly."""
    pristine = populated_site(tmp_path_factory.mktemp("pristine") / "site")
    (pristine / "zope" / "__pycache__").mkdir()
    (pristine / "zope" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"pyc")
    done = tmp_path_factory.mktemp("done") / "site"
    shutil.copytree(pristine, done, symlinks=True)
    assert run_cli("strip", str(done))[0] == 1  # NS111 in the tree
    return pristine, snapshot(pristine), snapshot(done)


def test_kill_at_every_step(states, tmp_path):
    pristine, original, stripped = states
    assert original != stripped
    killed_at = []
    for step in range(1, 200):
        site = tmp_path / f"run{step}"
        shutil.copytree(pristine, site, symlinks=True)
        proc = run_module("strip", str(site), env={journal.KILL_AT_ENV: str(step)})
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode == 1, proc.stderr  # ran to the end: the step count is exhausted
            assert snapshot(site) == stripped
            break
        killed_at.append(step)

        # A read-only command refuses the half-done tree instead of reporting on it.
        scan = run_module("scan", str(site))
        if journal.pending(site):
            assert scan.returncode == 4 and "interrupted strip" in scan.stderr
        else:
            assert snapshot(site) == original  # killed before the journal existed

        # Recovery alone leaves the tree as it was or as it should be, never between.
        recovered_copy = tmp_path / f"recovered{step}"
        shutil.copytree(site, recovered_copy, symlinks=True)
        outcome = journal.recover(recovered_copy)
        assert outcome in (None, "rolled back", "completed", "cleaned up")
        assert snapshot(recovered_copy) in (original, stripped), f"between states after kill at step {step}"

        # And the next run always ends with the stripped tree and true RECORDs.
        had_journal = journal.pending(site)
        rerun = run_module("strip", str(site))
        assert rerun.returncode == 1, rerun.stderr
        assert ("Recovered an interrupted strip" in rerun.stdout) == had_journal
        assert snapshot(site) == stripped
        assert_records_true(site)
        shutil.rmtree(site)
        shutil.rmtree(recovered_copy)
    # Every phase was hit: journal writing, each rename, commit, cleanup.
    assert len(killed_at) >= 15, killed_at


def test_failure_leaves_journal_free_original(states, tmp_path):
    pristine, original, _ = states
    site = tmp_path / "site"
    shutil.copytree(pristine, site, symlinks=True)
    proc = run_module("strip", str(site), env={journal.FAIL_AT_ENV: "6"})
    assert proc.returncode == 4
    assert snapshot(site) == original
    assert without_journal(snapshot(site)) == snapshot(site)


def test_dry_run_refuses_pending_journal(states, tmp_path):
    pristine, _, _ = states
    site = tmp_path / "site"
    shutil.copytree(pristine, site, symlinks=True)
    run_module("strip", str(site), env={journal.KILL_AT_ENV: "8"})
    code, _, err = run_cli("strip", "--dry-run", str(site))
    assert code == 4 and "run without --dry-run" in err


def test_moves_survive_kill_at_every_step(tmp_path):
    """ext --rename moves files through the same journal: check moves and rewrites together."""
    def fresh(where: Path) -> Path:
        where.mkdir()
        (where / "foo.so").write_bytes(b"\x7fELF")
        (where / "RECORD").write_text("foo.so,,\n")
        return where

    original = snapshot(fresh(tmp_path / "original"))
    code = ("import sys; from pathlib import Path; from ns_strip import journal; "
            "journal.apply(Path(sys.argv[1]), (), {'RECORD': b'foo.cpython-311-x86_64-linux-gnu.so,,\\n'}, "
            "moves={'foo.so': 'foo.cpython-311-x86_64-linux-gnu.so'})")
    final = None
    for step in range(1, 50):
        base = fresh(tmp_path / f"run{step}")
        proc = subprocess.run([sys.executable, "-c", code, str(base)], env={**os.environ, journal.KILL_AT_ENV: str(step)})
        if proc.returncode == 0:
            final = snapshot(base)
            break
        assert proc.returncode == -signal.SIGKILL
        journal.recover(base)
        assert snapshot(base) in (original, {
            "foo.cpython-311-x86_64-linux-gnu.so": b"\x7fELF", "RECORD": b"foo.cpython-311-x86_64-linux-gnu.so,,\n",
        })
    assert final == {"foo.cpython-311-x86_64-linux-gnu.so": b"\x7fELF", "RECORD": b"foo.cpython-311-x86_64-linux-gnu.so,,\n"}
    assert step > 5
