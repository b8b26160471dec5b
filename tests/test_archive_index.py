"""``ns-strip archive index`` and ``report`` on a small archive of every kind of artifact, each
crafted so that one known fact holds: the index must record it and the report must find it."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_archive_support import NSPKG_LINE, PKG_RESOURCES_INIT, PKGUTIL_INIT, deb, run_archive, sdist, wheel

from ns_strip.archive.store import IndexStore


def build_archive(root: Path) -> Path:
    archive = root / "archive"
    wheels = archive / "pypi"
    wheel(wheels, "zope.a", {"zope/__init__.py": PKG_RESOURCES_INIT, "zope/a/__init__.py": "A = 1\n",
                             "zope.a-1.0.dist-info/namespace_packages.txt": "zope\n"})
    wheel(wheels, "zope.b", {"zope/__init__.py": PKGUTIL_INIT, "zope/b/__init__.py": "B = 1\n"}, version="1.0")
    wheel(wheels, "zope.b", {"zope/b/__init__.py": "B = 2\n"}, version="2.0")
    wheel(wheels, "shadow", {"zope/__init__.py": "x = 1\n", "zope/shadow.py": ""})
    wheel(wheels, "nuitka-a", {"shared_ns.cpython-311-x86_64-linux-gnu.so": b"\x7fELF garbage"})
    wheel(wheels, "nuitka-b", {"shared_ns/mod.py": "M = 1\n"})
    wheel(wheels, "claims-foo", {"foo/__init__.py": ""}, metadata_extra="Import-Name: foo\n")
    wheel(wheels, "ships-foo-bar", {"foo/bar/__init__.py": ""})
    wheel(wheels, "pth-user", {"pth_user.py": "", "pth-user-nspkg.pth": NSPKG_LINE.format(ns="pthns"),
                               "coverage-hook.pth": "import os; os.environ.get('X')\n/some/dir\n# comment\n"})
    sdist(archive / "sdists", "zope.c", "1.0", {"src/zope/__init__.py": PKG_RESOURCES_INIT,
                                               "src/zope/c/__init__.py": "C = 1\n", "setup.py": "",
                                               "tests/test_c.py": ""},
          top_level=["zope"], namespace_packages=["zope"])
    deb(archive / "debian", "python3-zope.d", {"zope/d/__init__.py": "D = 1\n",
                                             "zope.d-1.0-nspkg.pth": NSPKG_LINE.format(ns="zope")},
        egg_info={"namespace_packages.txt": "zope\n"}, dist_name="zope.d")
    (archive / "README.txt").write_text("not an artifact\n")
    return archive


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("archive")
    archive = build_archive(root)
    db = root / "index.sqlite"
    result = run_archive("index", str(archive), "--db", str(db), "--jobs", "2", "--json")
    assert result.returncode == 0, result.stderr
    return archive, db, json.loads(result.stdout)


def _report(db: Path, *extra: str) -> dict:
    result = run_archive("report", "--db", str(db), "--json", *extra)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def _findings(report: dict, code: str) -> list[dict]:
    return [f for f in report["findings"] if f["code"] == code]


def test_index_records_every_artifact_once(indexed: tuple[Path, Path, dict]) -> None:
    _, db, summary = indexed
    assert summary["found"] == 11 and summary["indexed"] == 11 and summary["refused"] == 0
    with IndexStore(db, create=False) as store:
        kinds = dict(store.db.execute("SELECT kind, count(*) FROM artifacts GROUP BY kind"))
        assert kinds == {"wheel": 9, "sdist": 1, "deb": 1}
        assert store.count("artifact_paths") == 11


def test_index_holds_what_each_analysis_found(indexed: tuple[Path, Path, dict]) -> None:
    _, db, _ = indexed
    db_ = sqlite3.connect(db)
    styles = set(db_.execute("SELECT d.name, n.name, n.style FROM namespaces n JOIN distributions d "
                             "ON d.artifact_id = n.artifact_id"))
    assert ("zope.a", "zope", "pkg_resources") in styles
    assert ("zope.b", "zope", "pkgutil") in styles
    assert ("zope.c", "zope", "pkg_resources") in styles  # the sdist, read from src/
    assert ("zope.d", "zope", "nspkg_pth") in styles  # the .deb's nspkg.pth
    # The sdist's tests/ and setup.py are not installed; its files come with sha256 and size.
    sdist_files = {row[0] for row in db_.execute(
        "SELECT f.path FROM files f JOIN artifacts a ON a.id = f.artifact_id WHERE a.kind = 'sdist'")}
    assert "zope/c/__init__.py" in sdist_files and not any(p.startswith(("tests/", "setup.py")) for p in sdist_files)
    deb_rows = db_.execute("SELECT f.path, f.hash, f.size FROM files f JOIN artifacts a ON a.id = f.artifact_id "
                           "WHERE a.kind = 'deb' AND f.path = 'zope/d/__init__.py'").fetchall()
    assert deb_rows and deb_rows[0][1].startswith("sha256=") and deb_rows[0][2] == len("D = 1\n")
    legacy = {row for row in db_.execute("SELECT path, kind FROM legacy_files")}
    assert ("zope/__init__.py", "init") in legacy and ("zope.d-1.0-nspkg.pth", "nspkg_pth") in legacy
    extension = db_.execute("SELECT module, format FROM extensions").fetchall()
    assert extension == [("shared_ns", None)]  # garbage bytes: no format, and NS205
    codes = {row[0] for row in db_.execute("SELECT code FROM findings")}
    assert {"NS102", "NS101", "NS103", "NS104", "NS205", "NS133"} <= codes
    declared = db_.execute("SELECT name, kind FROM import_names WHERE distribution = 'claims-foo' AND "
                           "origin = 'declared'").fetchall()
    assert declared == [("foo", "name")]
    pth = set(db_.execute("SELECT path, kind FROM pth_lines"))
    assert pth == {("pth-user-nspkg.pth", "nspkg"), ("coverage-hook.pth", "other"), ("zope.d-1.0-nspkg.pth", "nspkg")}


def test_report_finds_the_archive_conflicts(indexed: tuple[Path, Path, dict]) -> None:
    _, db, _ = indexed
    report = _report(db)
    assert report["selection"] == "newest release of each project"
    ns303 = _findings(report, "NS303")
    # foo/__init__.py of claims-foo also shadows the namespace foo of ships-foo-bar (as 'check' says).
    assert [(f["path"], f["distributions"][0]) for f in ns303] == [("foo", "claims-foo"), ("zope", "shadow")]
    assert set(ns303[1]["namespace_users"]) == {"zope.a", "zope.b", "zope.c", "zope.d"}
    ns202 = _findings(report, "NS202")
    assert [(f["path"], f["distributions"]) for f in ns202] == [("shared_ns", ["nuitka-a", "nuitka-b"])]
    ns304 = _findings(report, "NS304")
    assert [(f["claim"], f["name"], f["overlap"]) for f in ns304] == [("foo", "foo", "Name/Namespace"), ("foo", "foo.bar", "Name/Name")]
    # zope.b 2.0 (the newest) is PEP 420 while zope.a, zope.c and zope.d are legacy.
    ns603 = _findings(report, "NS603")
    assert [f["path"] for f in ns603] == ["zope"]
    assert "zope-b" in ns603[0]["pep420"] and {"zope-a", "zope-c", "zope-d"} <= set(ns603[0]["legacy"])
    ns301 = {f["path"]: f for f in _findings(report, "NS301")}
    assert "zope/__init__.py" in ns301 and "legacy namespace" in ns301["zope/__init__.py"]["message"]
    census = report["census"]
    assert census["pth_import_lines"] == {"nspkg": 2, "other": 1}
    # zope.d's nspkg.pth; pth-user's loads a namespace it ships no file for (scan may call that
    # nspkg_pth or declared_only).
    styles = census["projects_by_namespace_style"]
    assert styles["nspkg_pth"] >= 1 and styles["nspkg_pth"] + styles["declared_only"] == 2
    assert census["extension_findings"]["NS205"] == 1
    assert census["artifacts"] == {"deb indexed": 1, "sdist indexed": 1, "wheel indexed": 9}


def test_report_all_releases_sees_the_older_one(indexed: tuple[Path, Path, dict]) -> None:
    _, db, _ = indexed
    newest = _report(db)
    everything = _report(db, "--all-releases")
    assert everything["census"]["distributions"] == newest["census"]["distributions"] + 1
    newest_owners = {d for f in _findings(newest, "NS301") for d in f["distributions"]}
    all_owners = {d for f in _findings(everything, "NS301") for d in f["distributions"]}
    assert "zope.b" not in newest_owners and "zope.b" in all_owners  # 1.0 shipped a pkgutil zope/__init__.py


def test_report_exit_code_and_html(indexed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, db, _ = indexed
    page = tmp_path / "census.html"
    result = run_archive("report", "--db", str(db), "--html", str(page))
    assert result.returncode == 1  # NS301/NS303/NS202/NS304 are errors
    assert "Archive census" in result.stdout and "NS303 zope:" in result.stdout
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "class=bar" in text
    # Self-contained: no script, nothing fetched.
    assert "<script" not in text and "src=" not in text and "http" not in text.replace("http-equiv", "")
    only_census = run_archive("report", "--db", str(db), "--ignore", "NS3,NS2,NS6")
    assert only_census.returncode == 0


def test_resume_skips_what_is_indexed_and_duplicates_are_one_artifact(indexed: tuple[Path, Path, dict],
                                                                      tmp_path: Path) -> None:
    archive, db, _ = indexed
    copy = tmp_path / "index.sqlite"
    shutil.copy(db, copy)
    with IndexStore(copy, create=False) as store:
        before = store.canonical()
    again = run_archive("index", str(archive), "--db", str(copy), "--json")
    summary = json.loads(again.stdout)
    assert summary["skipped"] == 11 and summary["indexed"] == 0
    other = tmp_path / "mirror"
    other.mkdir()
    shutil.copy(next((archive / "pypi").glob("zope.a-*.whl")), other / "zope.a-1.0-py3-none-any.whl")
    dup = json.loads(run_archive("index", str(other), "--db", str(copy), "--json").stdout)
    assert dup["duplicates"] == 1 and dup["indexed"] == 0
    with IndexStore(copy, create=False) as store:
        after = store.canonical()
        assert after == before
        assert store.count("artifact_paths") == 12


def test_hostile_wheel_is_refused_and_the_run_goes_on(tmp_path: Path) -> None:
    archive = tmp_path / "a"
    wheel(archive, "good", {"good.py": ""})
    wheel(archive, "evil", {"../evil.py": "x"})
    db = tmp_path / "i.sqlite"
    result = run_archive("index", str(archive), "--db", str(db), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "NS601" in result.stdout and "climbs out" in result.stdout
    report = _report(db)
    refused = _findings(report, "NS601")
    assert len(refused) == 1 and refused[0]["path"].startswith("evil-")
    assert report["census"]["artifacts"] == {"wheel indexed": 1, "wheel refused": 1}


@pytest.mark.parametrize("args, message", [
    (["index", "/nonexistent-dir", "--db", "x.sqlite"], "no such file or directory"),
    (["index", "README", "--db", "x.sqlite"], "not a wheel"),
    (["index", ".", "--db", "x.sqlite", "--jobs", "0"], "--jobs must be at least 1"),
    (["report", "--db", "missing.sqlite"], "no such index"),
    (["index", ".", "--db", "no-such-dir/x.sqlite"], "the index's directory does not exist"),
])
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "README").write_text("x")
    result = _in(tmp_path, args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def _in(directory: Path, args: list[str]):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ns_strip", "archive", *args], capture_output=True, text=True,
                          cwd=directory, timeout=60, env=os.environ.copy())


def test_another_database_is_bad_input(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    result = run_archive("report", "--db", str(other))
    assert result.returncode == 3 and "not an ns-strip archive index" in result.stderr


def _pairs(findings: list[dict]) -> set[tuple]:
    """Conflicts as (code, name or path, first distribution, other distribution) pairs."""
    pairs = set()
    for f in findings:
        code, dists = f["code"], f["distributions"]
        if code in ("NS301", "NS302"):
            pairs |= {(code, f["path"], a, b) for a in dists for b in dists if a < b}
        elif code in ("NS202", "NS303"):
            name = f.get("name") or f["path"]
            pairs |= {(code, name, dists[0], other) for other in dists[1:]}
        elif code == "NS304":
            pairs.add((code, f"{f['claim']}>{f['name']}", dists[0], dists[1]))
    return pairs


def test_report_agrees_with_check_on_the_same_wheels(indexed: tuple[Path, Path, dict]) -> None:
    """The archive's conflicts are computed by grouping, 'check' compares every pair: on the
    newest wheel of each project they must find the same conflicts."""
    archive, db, _ = indexed
    newest = sorted(p for p in (archive / "pypi").glob("*.whl") if not p.name.startswith("zope.b-1.0"))
    checked = subprocess.run([sys.executable, "-m", "ns_strip", "check", "--json", *map(str, newest)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1, checked.stderr
    from_check = _pairs(json.loads(checked.stdout)["findings"])
    wheels_only = tmp_db_of(archive / "pypi", db.parent / "wheels-only.sqlite")
    from_archive = _pairs(_report(wheels_only)["findings"])
    assert from_check  # the archive holds conflicts of every kind
    assert {code for code, *_ in from_check} == {"NS301", "NS303", "NS202", "NS304"}
    assert from_archive == from_check


def tmp_db_of(directory: Path, db: Path) -> Path:
    result = run_archive("index", str(directory), "--db", str(db), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    return db


def test_batches_are_guided_bounded_and_hand_out_each_artifact_once(tmp_path: Path) -> None:
    """Tasks are large while much is left and shrink to one artifact at the end; a large file
    goes alone; retries go first; every path comes out exactly once, in order."""
    from ns_strip.archive import engines

    paths = []
    for number in range(3000):
        path = tmp_path / f"a{number:05d}.whl"
        path.write_bytes(b"x" * 100)
        paths.append(str(path))
    big = tmp_path / "a01000.whl"
    with big.open("r+b") as stream:  # sparse: larger than a task's byte budget, nothing on disk
        stream.truncate(engines.BATCH_BYTES + 1)
    batches = engines.Batches(paths, workers=2)
    handed: list[list[str]] = []
    while batches:
        handed.append(batches.next())
        if len(handed) == 3:
            batches.retry_alone(["again-1", "again-2"])
    sizes = [len(batch) for batch in handed]
    assert sizes[0] == engines.MAX_BATCH and sizes[-1] == 1
    assert handed[3:5] == [["again-2"], ["again-1"]]
    assert [str(big)] in handed  # alone: its neighbours went in the tasks before and after
    ordinary = [batch for batch in handed if "again-1" not in batch and "again-2" not in batch]
    assert [path for batch in ordinary for path in batch] == paths
    after_big = sizes[handed.index([str(big)]) + 1:]
    assert after_big == sorted(after_big, reverse=True)  # never larger than the one before
    assert len(handed) < 3000 // 8  # far fewer tasks than artifacts
