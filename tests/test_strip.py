"""Stripping a site dir: what goes, what stays, RECORD kept true, idempotence, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from installer.records import RecordEntry, parse_record_file
from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, add_egg_info_zope_foo, run_cli, run_module, snapshot
from test_scan import populated_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = populated_site(tmp_path / "lib" / "python3.11" / "site-packages")
    # Bytecode the interpreter or the build left beside the inits.
    for package in ("zope", "jaraco", "hyb"):
        cache = site / package / "__pycache__"
        cache.mkdir()
        (cache / "__init__.cpython-311.pyc").write_bytes(b"pyc")
        (cache / "__init__.cpython-311.opt-1.pyc").write_bytes(b"pyc")
    (site / "jaraco" / "__init__.pyc").write_bytes(b"legacy pyc")
    (site / "jaraco" / "__pycache__" / "other.cpython-311.pyc").write_bytes(b"keep me")
    return site


def assert_records_true(site: Path) -> None:
    """Every RECORD row names an existing file whose hash and size match."""
    for record in site.glob("*.dist-info/RECORD"):
        for path, hash_, size in parse_record_file(record.read_text().splitlines()):
            entry = RecordEntry.from_elements(path, hash_, size)
            target = site / path
            assert target.exists(), f"{record}: lists missing {path}"
            if entry.hash_ is not None:
                assert entry.validate(target.read_bytes()), f"{record}: {path} does not match"


def test_strip_removes_exactly_the_legacy_files(site):
    before = snapshot(site)
    code, out, err = run_cli("strip", str(site), "--json")
    assert code == 1, err  # the unparseable brk/__init__.py (NS111) is reported at error level
    result = json.loads(out)
    after = snapshot(site)
    gone = sorted(set(before) - set(after))
    assert gone == sorted([
        "zope/__init__.py", "zope/__pycache__", "zope/__pycache__/__init__.cpython-311.pyc",
        "zope/__pycache__/__init__.cpython-311.opt-1.pyc",
        "jaraco/__init__.py", "jaraco/__init__.pyc", "jaraco/__pycache__/__init__.cpython-311.pyc",
        "jaraco/__pycache__/__init__.cpython-311.opt-1.pyc",
        "ruamel.std.pathlib-1.0-py3.11-nspkg.pth",
        "ruamel_std_pathlib-1.0.dist-info/namespace_packages.txt",
        "ghost-1.0.dist-info/namespace_packages.txt",
        "fb/__init__.py",
    ])
    assert set(after) <= set(before)
    assert result["removed"] == [p for p in result["removed"]]  # order is the plan's
    assert sorted(result["removed"]) == sorted([p for p in gone if p != "zope/__pycache__"] + ["zope/__pycache__/"])
    assert result["rewritten"] == sorted([
        "fallback-1.0.dist-info/RECORD", "ghost-1.0.dist-info/RECORD", "jaraco_text-1.0.dist-info/RECORD",
        "ruamel_std_pathlib-1.0.dist-info/RECORD", "zope_event-1.0.dist-info/RECORD",
        "zope_interface-1.0.dist-info/RECORD",
    ])
    assert {k["path"]: k["code"] for k in result["kept"]} == {
        "hyb/__init__.py": "NS110", "brk/__init__.py": "NS111", "host/plugins/__init__.py": "NS112",
    }
    assert result["dry_run"] is False
    assert_records_true(site)


def test_record_rewrite_only_drops_rows(site):
    record = site / "jaraco_text-1.0.dist-info" / "RECORD"
    original = record.read_text().splitlines(keepends=True)
    run_cli("strip", str(site))
    assert record.read_text().splitlines(keepends=True) == [
        line for line in original if not line.startswith("jaraco/__init__.py,")
    ]


def test_second_run_changes_nothing_and_says_so(site):
    run_cli("strip", str(site))
    before = snapshot(site)
    mtimes = {p: os.stat(p).st_mtime_ns for p in site.rglob("*")}
    code, out, _ = run_cli("strip", str(site))
    assert snapshot(site) == before
    assert {p: os.stat(p).st_mtime_ns for p in site.rglob("*")} == mtimes
    assert f"Nothing to strip in {site}" in out
    assert "Stripping" not in out
    assert code == 1  # the unparseable file is still there and still reported


def test_dry_run_shows_the_plan_and_changes_nothing(site, tmp_path):
    before = snapshot(site)
    code, out, _ = run_cli("strip", str(site), "--dry-run", "--json")
    planned = json.loads(out)
    assert snapshot(site) == before
    assert planned["dry_run"] is True
    code, out, _ = run_cli("strip", str(site), "--json")
    done = json.loads(out)
    assert (planned["removed"], planned["rewritten"]) == (done["removed"], done["rewritten"])


def test_human_output_reads_like_the_eclass(site):
    code, out, _ = run_cli("strip", str(site))
    lines = out.splitlines()
    assert "Stripping pkg_resources-style namespace zope (zope/__init__.py)" in lines
    assert "Stripping pkgutil-style namespace jaraco (jaraco/__init__.py)" in lines
    assert ("Stripping pkg_resources-style namespace ruamel, ruamel.std "
            "(ruamel.std.pathlib-1.0-py3.11-nspkg.pth)") in lines
    assert "Updating zope_event-1.0.dist-info/RECORD" in lines
    hybrid = [line for line in lines if line.startswith("NS110 hyb/__init__.py:")]
    assert hybrid == ["NS110 hyb/__init__.py: hybrid pkgutil-style namespace hyb: kept, stripping is "
                      "blocked by line 2: from .core import main [hybrid-dist]"]


def test_dry_run_lines_are_marked(site):
    _, out, _ = run_cli("strip", str(site), "-n")
    assert "[dry run] Stripping pkgutil-style namespace jaraco (jaraco/__init__.py)" in out.splitlines()


def test_keep_by_namespace_or_path(site):
    code, out, _ = run_cli("strip", str(site), "--keep", "zope", "--keep", "jaraco/__init__.py", "--json")
    result = json.loads(out)
    assert (site / "zope" / "__init__.py").exists() and (site / "jaraco" / "__init__.py").exists()
    assert {"path": "zope/__init__.py", "code": "keep", "reason": "listed in --keep"} in result["kept"]
    assert not (site / "fb" / "__init__.py").exists()
    assert_records_true(site)


def test_tree_without_record(tmp_path):
    (tmp_path / "zope" / "a").mkdir(parents=True)
    (tmp_path / "zope" / "__init__.py").write_text(PKG_RESOURCES_INIT)
    (tmp_path / "zope" / "a" / "__init__.py").write_text("")
    code, out, _ = run_cli("strip", str(tmp_path), "--json")
    assert code == 0
    assert json.loads(out)["removed"] == ["zope/__init__.py"]
    assert json.loads(out)["rewritten"] == []


def test_egg_info_installed_files_rewritten(tmp_path):
    egg = add_egg_info_zope_foo(tmp_path, PKGUTIL_INIT)
    assert run_cli("strip", str(tmp_path))[0] == 0
    assert (egg / "installed-files.txt").read_text() == "../zope/foo.py\nPKG-INFO\n"


def test_namespace_dir_left_empty_is_removed(tmp_path):
    add_distribution(tmp_path, "only-ns", {"onlyns/__init__.py": PKGUTIL_INIT})
    (tmp_path / "preexisting_empty").mkdir()
    run_cli("strip", str(tmp_path))
    assert not (tmp_path / "onlyns").exists()
    assert (tmp_path / "preexisting_empty").is_dir()


# -- refusals: exit 3, nothing changed ---------------------------------------------------------

@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("/etc/passwd,,\n", "absolute path in RECORD entry '/etc/passwd'"),
        ("../../../../../etc/x,,\n", "points outside the root"),
        ("zope/../../../../../etc/x,,\n", "points outside the root"),
        ("C:/Windows/x.dll,,\n", "absolute path"),
    ],
)
def test_unsafe_record_is_refused_before_any_change(tmp_path, row, problem):
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    dist_info = add_distribution(site, "zope.x", {"zope/__init__.py": PKGUTIL_INIT, "zope/x/__init__.py": ""})
    with open(dist_info / "RECORD", "a") as record:
        record.write(row)
    before = snapshot(tmp_path)
    proc = run_module("strip", str(site))
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{site}/zope_x-1.0.dist-info/RECORD" in proc.stderr or "RECORD" in proc.stderr
    assert problem in proc.stderr
    assert snapshot(tmp_path) == before


def test_scripts_above_a_scheme_site_dir_are_fine(tmp_path):
    site = tmp_path / "usr" / "lib" / "python3.11" / "site-packages"
    dist_info = add_distribution(site, "zope.x", {"zope/__init__.py": PKGUTIL_INIT, "zope/x/__init__.py": ""})
    with open(dist_info / "RECORD", "a") as record:
        record.write("../../../bin/zope-x,sha256=abc,3\n")
    assert run_cli("strip", str(site))[0] == 0
    assert "../../../bin/zope-x,sha256=abc,3\n" in (dist_info / "RECORD").read_text()


def test_malformed_record_is_refused(tmp_path):
    dist_info = add_distribution(tmp_path, "zope.x", {"zope/__init__.py": PKGUTIL_INIT, "zope/x.py": ""})
    with open(dist_info / "RECORD", "a") as record:
        record.write("zope/y.py,md5-is-not-a-hash,notanumber\n")
    before = snapshot(tmp_path)
    code, _, err = run_cli("strip", str(tmp_path))
    assert code == 3 and "is not a valid RECORD row" in err
    assert snapshot(tmp_path) == before


def test_symlinked_init_leaving_the_root_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "__init__.py").write_text(PKGUTIL_INIT)
    site = tmp_path / "site"
    (site / "ns" / "portion").mkdir(parents=True)
    (site / "ns" / "portion" / "__init__.py").write_text("")
    os.symlink(outside / "__init__.py", site / "ns" / "__init__.py")
    os.symlink(outside, site / "linked_dir")
    code, out, _ = run_cli("strip", str(site), "--json")
    result = json.loads(out)
    assert result["removed"] == []
    assert [(f["code"], f["path"]) for f in result["findings"]] == [("NS113", "ns/__init__.py")]
    assert (outside / "__init__.py").read_text() == PKGUTIL_INIT
    assert os.path.islink(site / "ns" / "__init__.py")


def test_symlinked_init_inside_the_root_removes_the_link_only(tmp_path):
    site = tmp_path / "site"
    (site / "ns" / "portion").mkdir(parents=True)
    (site / "ns" / "portion" / "__init__.py").write_text("")
    (site / "shared_init.txt").write_text(PKGUTIL_INIT)
    os.symlink("../shared_init.txt", site / "ns" / "__init__.py")
    assert run_cli("strip", str(site))[0] == 0
    assert not os.path.lexists(site / "ns" / "__init__.py")
    assert (site / "shared_init.txt").read_text() == PKGUTIL_INIT


def test_root_refuses_a_site_dir_that_resolves_outside(tmp_path):
    destdir = tmp_path / "image"
    (destdir / "usr" / "lib").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, destdir / "usr" / "lib" / "python3")
    code, _, err = run_cli("strip", "--root", str(destdir), "/usr/lib/python3")
    assert code == 3 and "resolves outside --root" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["strip", "/no/such/dir"], "no such directory"),
        (["strip", "--root", "/", "relative/path"], "PATH must be absolute"),
        (["strip"], "the following arguments are required"),
        (["scan", "--select", "XX9", "."], "matches no finding code"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args, expected):
    code, out, err = run_cli(*args)
    assert code == 2
    assert expected in err and err.startswith("ns-strip: error: ")


def test_injected_failure_rolls_everything_back(site):
    before = snapshot(site)
    for step in (2, 5, 9):
        proc = run_module("strip", str(site), env={"NS_STRIP_TEST_FAIL_AT": str(step)})
        assert proc.returncode == 4, proc.stderr
        assert "rolled back" in proc.stderr or "nothing was changed" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert snapshot(site) == before


def test_select_and_ignore(site):
    code, out, _ = run_cli("scan", str(site), "--json", "--select", "NS11", "--ignore", "NS111")
    assert sorted(f["code"] for f in json.loads(out)["findings"]) == ["NS110", "NS112"]
    assert code == 0  # the error-level NS111 was ignored


def test_quiet_hides_info(site):
    _, out, _ = run_cli("scan", str(site), "-q")
    assert out and all(line.split()[0] in ("NS110", "NS111", "NS112") for line in out.splitlines())


def test_module_entry_point_and_version():
    proc = run_module("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("ns-strip ")


# -- RECORD rows of files already gone (NS401) -------------------------------------------------

def distutils_r1_stripped_site(tmp_path: Path) -> Path:
    """What Gentoo's distutils-r1 leaves: declared namespace files deleted, RECORD untouched."""
    site = tmp_path / "site"
    add_distribution(site, "ruamel.yaml", {
        "ruamel.yaml-0.17-py3.11-nspkg.pth": "import sys\n",
        "ruamel/__init__.py": PKG_RESOURCES_INIT,
        "ruamel/__pycache__/__init__.cpython-311.pyc": b"pyc",
        "ruamel/yaml/__init__.py": "",
        "ruamel/yaml/main.py": "",
    }, metadata_files={"namespace_packages.txt": "ruamel\n"})
    for leftover in ("ruamel.yaml-0.17-py3.11-nspkg.pth", "ruamel/__init__.py",
                     "ruamel/__pycache__/__init__.cpython-311.pyc", "ruamel_yaml-1.0.dist-info/namespace_packages.txt"):
        (site / leftover).unlink()
    return site


def test_scan_reports_record_rows_of_missing_files(tmp_path):
    site = distutils_r1_stripped_site(tmp_path)
    code, out, _ = run_cli("scan", "--json", str(site))
    (finding,) = [f for f in json.loads(out)["findings"] if f["code"] == "NS401"]
    assert finding["path"] == "ruamel_yaml-1.0.dist-info/RECORD"
    assert sorted(finding["missing"]) == sorted([
        "ruamel.yaml-0.17-py3.11-nspkg.pth", "ruamel/__init__.py", "ruamel/__pycache__/__init__.cpython-311.pyc",
        "ruamel_yaml-1.0.dist-info/namespace_packages.txt",
    ])
    assert code == 0  # a warning


def test_strip_after_distutils_r1_drops_the_stale_rows(tmp_path):
    site = distutils_r1_stripped_site(tmp_path)
    code, out, err = run_cli("strip", "--json", str(site))
    assert code == 0, err
    result = json.loads(out)
    assert result["removed"] == []
    assert len(result["dropped_rows"]) == 4
    assert result["rewritten"] == ["ruamel_yaml-1.0.dist-info/RECORD"]
    assert [f for f in result["findings"] if f["code"] == "NS401"] == []
    assert_records_true(site)
    before = snapshot(site)
    code, out, _ = run_cli("strip", str(site))
    assert snapshot(site) == before and "Nothing to strip" in out


def test_strip_keeps_rows_of_other_missing_files(tmp_path):
    site = distutils_r1_stripped_site(tmp_path)
    (site / "ruamel" / "yaml" / "main.py").unlink()  # not a namespace file: the RECORD is right to complain
    code, out, _ = run_cli("strip", "--json", str(site))
    result = json.loads(out)
    (finding,) = [f for f in result["findings"] if f["code"] == "NS401"]
    assert finding["missing"] == ["ruamel/yaml/main.py"]
    assert "ruamel/yaml/main.py," in (site / "ruamel_yaml-1.0.dist-info" / "RECORD").read_text()
