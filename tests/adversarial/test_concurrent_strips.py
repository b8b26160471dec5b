"""Several commands on one site dir at once: the lock serialises them, a second one never takes
the first one's live journal for an interrupted one, and every trial ends fully stripped with
true RECORDs, never half."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import assert_clean_exit, run_limited
from nstree import snapshot
from test_scan import populated_site
from test_strip import assert_records_true

from ns_strip.journal import JOURNAL_DIR, STEP_DELAY_ENV
from ns_strip.sitelock import LOCK_TIMEOUT_ENV

TRIALS = 12
PROCESSES = 4


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> tuple[Path, dict, dict]:
    pristine = populated_site(tmp_path_factory.mktemp("pristine") / "site")
    done = tmp_path_factory.mktemp("done") / "site"
    shutil.copytree(pristine, done, symlinks=True)
    assert_clean_exit(run_limited("strip", str(done)), {1})  # NS111 in the tree
    return pristine, snapshot(pristine), snapshot(done)


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ns_strip", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_concurrent_strips_end_fully_stripped(states, tmp_path):
    pristine, original, stripped = states
    assert original != stripped
    for trial in range(TRIALS):
        site = tmp_path / f"trial{trial}"
        shutil.copytree(pristine, site, symlinks=True)
        # Slowed steps widen the window in which an unlocked second strip would "recover" the
        # first one's journal (the defect: 2 half-stripped trees in 60).
        procs = [start("strip", str(site), env={STEP_DELAY_ENV: "0.003"}) for _ in range(PROCESSES)]
        results = [finish(proc) for proc in procs]
        for result in results:
            assert_clean_exit(result, {1})
            assert "Recovered" not in result.stdout, result.stdout  # nobody took a live journal
        # Exactly one of them found work; the others waited and found the tree stripped.
        assert sum("Stripping" in result.stdout for result in results) == 1
        assert snapshot(site) == stripped, f"trial {trial}"
        assert_records_true(site)
        shutil.rmtree(site)


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, finish(proc).stderr
        assert time.monotonic() < deadline, "the slowed strip never started its apply"
        time.sleep(0.01)


def test_waiters_give_up_then_the_holder_is_killed_and_recovered(states, tmp_path):
    pristine, _, stripped = states
    site = tmp_path / "site"
    shutil.copytree(pristine, site, symlinks=True)
    # Slow enough to hold the lock through every waiter on a loaded machine; killed below.
    holder = start("strip", str(site), env={STEP_DELAY_ENV: "3"})
    try:
        wait_for(site / JOURNAL_DIR, holder)
        quick = {LOCK_TIMEOUT_ENV: "0.3"}
        for args in (("strip", str(site)), ("strip", "--dry-run", str(site)),
                     ("import-names", "--write", str(site)), ("ext", "--rename", str(site)),
                     # the commands that only read wait too, rather than report on half a change
                     ("scan", str(site)), ("check", str(site)), ("import-names", str(site))):
            result = run_limited(*args, env=quick)
            assert_clean_exit(result, {4})
            assert "another ns-strip is changing this site dir" in result.stderr, result.stderr
            assert LOCK_TIMEOUT_ENV in result.stderr
            assert holder.poll() is None  # the holder is still at work: they did not wait it out
        assert (site / JOURNAL_DIR).exists()  # the live journal was left alone
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The lock went with the process, the journal stayed: a reader now refuses the tree (exit 4).
    result = run_limited("scan", str(site), env={LOCK_TIMEOUT_ENV: "0"})
    assert_clean_exit(result, {4})
    assert "an interrupted strip left its journal here" in result.stderr, result.stderr
    # The next strip recovers and strips.
    result = run_limited("strip", str(site))
    assert_clean_exit(result, {1})
    assert "Recovered an interrupted strip" in result.stdout
    assert snapshot(site) == stripped
    assert_records_true(site)


def test_a_waiter_proceeds_once_the_holder_is_done(states, tmp_path):
    pristine, _, stripped = states
    site = tmp_path / "site"
    shutil.copytree(pristine, site, symlinks=True)
    holder = start("strip", str(site), env={STEP_DELAY_ENV: "0.05"})
    wait_for(site / JOURNAL_DIR, holder)
    waiter = run_limited("strip", "--json", str(site), env={LOCK_TIMEOUT_ENV: "60"})
    assert_clean_exit(finish(holder), {1})
    assert_clean_exit(waiter, {1})
    assert '"removed": []' in waiter.stdout and '"recovered": null' in waiter.stdout
    assert snapshot(site) == stripped


@pytest.mark.parametrize("command", ["scan", "check", "import-names"])
def test_a_reader_waits_for_a_live_strip_and_reports_on_its_result(states, tmp_path, command):
    """A command that only reads takes the site dir's lock shared: started while a strip is
    half done, it waits for the strip's end and reports on the stripped tree (before, it found
    the live journal and stopped with exit 4)."""
    pristine, _, stripped = states
    site = tmp_path / "site"
    shutil.copytree(pristine, site, symlinks=True)
    reference = tmp_path / "reference"
    shutil.copytree(pristine, reference, symlinks=True)
    assert_clean_exit(run_limited("strip", str(reference)), {1})
    holder = start("strip", str(site), env={STEP_DELAY_ENV: "0.05"})
    wait_for(site / JOURNAL_DIR, holder)
    reader = run_limited(command, "--json", str(site), env={LOCK_TIMEOUT_ENV: "60"})
    assert_clean_exit(finish(holder), {1})
    assert snapshot(site) == stripped
    after = run_limited(command, "--json", str(reference))
    assert_clean_exit(reader, {after.returncode})
    assert reader.stdout.replace(str(site), "SITE") == after.stdout.replace(str(reference), "SITE")


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan"])
def test_bad_lock_timeout_is_a_usage_error(tmp_path, value):
    site = populated_site(tmp_path / "site")
    before = snapshot(site)
    result = run_limited("strip", str(site), env={LOCK_TIMEOUT_ENV: value})
    assert_clean_exit(result, {2})
    assert LOCK_TIMEOUT_ENV in result.stderr
    assert snapshot(site) == before
