"""Real artifacts: the pinned subset of benchmarks/archive_ci_sample*.txt (wheels from PyPI,
Debian 12 ``.deb`` files), downloaded by .ci/setup.d/60-archive.sh into
``$NS_STRIP_ARCHIVE_SAMPLE``, run through ``archive index`` and ``archive report``; the facts
checked are known about these exact releases."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from test_archive_support import run_archive

HERE = Path(__file__).resolve().parent.parent / "benchmarks"


def _sample() -> Path:
    where = os.environ.get("NS_STRIP_ARCHIVE_SAMPLE")
    expected = [line.split("#")[0].strip() for line in (HERE / "archive_ci_sample.txt").read_text().splitlines()]
    expected = [line for line in expected if line]
    path = Path(where) if where else None
    if path is None or len(list((path / "wheels").glob("*.whl"))) < len(expected) \
            or len(list((path / "debs").glob("*.deb"))) < 3:
        message = ("the real sample is missing: run benchmarks/archive_sample.py --list "
                   "benchmarks/archive_ci_sample.txt --debs-list benchmarks/archive_ci_sample_debs.txt "
                   "--dest DIR and set NS_STRIP_ARCHIVE_SAMPLE=DIR")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    sample = _sample()
    db = tmp_path_factory.mktemp("real") / "index.sqlite"
    indexed = run_archive("index", str(sample), "--db", str(db), "--json")
    assert indexed.returncode == 0, indexed.stderr
    report = run_archive("report", "--db", str(db), "--json")
    assert report.returncode in (0, 1), report.stderr
    return db, json.loads(indexed.stdout), json.loads(report.stdout)


def _styles(db: Path, filename_like: str) -> set[tuple[str, str]]:
    rows = sqlite3.connect(db).execute(
        "SELECT n.name, n.style FROM namespaces n JOIN artifacts a ON a.id = n.artifact_id WHERE a.filename LIKE ?",
        (filename_like,))
    return set(rows)


def test_every_real_artifact_is_indexed(real: tuple[Path, dict, dict]) -> None:
    _, summary, _ = real
    assert summary["found"] == 13 and summary["indexed"] == 13, summary


def test_zope_wheels_before_2025_declare_pkg_resources_namespaces(real: tuple[Path, dict, dict]) -> None:
    db, _, _ = real
    # setuptools built them with namespace_packages=['zope']: namespace_packages.txt and an
    # *-nspkg.pth in the wheel, no zope/__init__.py.
    for wheel in ("zope.event-5.0-%", "zope.interface-6.0-%"):
        assert ("zope", "nspkg_pth") in _styles(db, wheel)
        codes = {row[0] for row in sqlite3.connect(db).execute(
            "SELECT f.code FROM findings f JOIN artifacts a ON a.id = f.artifact_id WHERE a.filename LIKE ?",
            (wheel,))}
        assert {"NS103", "NS104"} <= codes
    # zope.event 6.0 (2025) is a PEP 420 portion.
    assert _styles(db, "zope_event-6.0-%") == {("zope", "pep420")}
    # Debian 12's zope.interface keeps setuptools' nspkg.pth and a pkg_resources zope/__init__.py.
    assert {("zope", "nspkg_pth"), ("zope", "pkg_resources")} <= _styles(db, "python3-zope.interface_%")
    assert ("backports", "pkgutil") in _styles(db, "backports.tarfile-1.2.0-%")
    assert ("azure", "pep420") in _styles(db, "azure_core-1.30.0-%")


def test_real_extensions_export_their_init_functions(real: tuple[Path, dict, dict]) -> None:
    db, _, _ = real
    rows = set(sqlite3.connect(db).execute("SELECT module, exported, format FROM extensions"))
    assert ("markupsafe._speedups", '["_speedups"]', "elf") in rows
    assert ("zope.interface._zope_interface_coptimizations", '["_zope_interface_coptimizations"]', "elf") in rows
    assert not sqlite3.connect(db).execute("SELECT count(*) FROM findings WHERE code IN ('NS201','NS205')").fetchone()[0]


def test_report_on_the_real_sample(real: tuple[Path, dict, dict]) -> None:
    _, _, report = real
    census = report["census"]
    # Newest release of each project: zope.event 6.0 (PEP 420) beside zope.interface 6.0 (legacy).
    mixed = [f for f in report["findings"] if f["code"] == "NS603"]
    assert [f["path"] for f in mixed] == ["zope"]
    assert mixed[0]["pep420"] == ["zope-event"] and "zope-interface" in mixed[0]["legacy"]
    # nspkg.pth lines of zope.interface 6.0, backports.csv 1.0.7, sphinxcontrib-serializinghtml 1.1.5.
    assert census["pth_import_lines"] == {"nspkg": 3}
    assert census["projects"] == 10  # 9 PyPI projects (zope.event twice) + jaraco.text from Debian
