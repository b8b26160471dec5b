"""Huge and hostile text inputs (issue 11, items 6 and 9): every read is bounded, what is over
a limit is kept and reported or refused with the file named, and memory stays low.

Each command runs in a child under a 256 MB address-space limit (half the suite's default):
the attacks found cost 500 MB (a 1 MB ``__init__.py`` line), 1.2 GB (a 4 MB ``.pth`` line) and
2.5 GB (``ext`` reading ``/dev/zero``); a bounded read of each costs a few tens of MB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from nstree import PKGUTIL_INIT, add_distribution, record_hash

from ns_strip.distributions import MAX_RECORD_ROWS
from ns_strip.initfile import MAX_INIT_TOKENS
from ns_strip.safeio import MAX_INIT_BYTES, MAX_METADATA_BYTES, MAX_PTH_BYTES, MAX_TEXT_BYTES

MEMORY = 256 << 20


def run(*args: str):
    return run_limited(*args, memory=MEMORY)


def scan_json(site: Path, *options: str, allowed=(0, 1)) -> dict:
    result = run("scan", "--json", *options, str(site))
    assert_clean_exit(result, allowed)
    return json.loads(result.stdout)


def codes(report: dict) -> list[str]:
    return [finding["code"] for finding in report["findings"]]


# -- __init__.py ----------------------------------------------------------------------------

ONE_MB = 1 << 20
HUGE_INIT_LINES = {
    # 1 MB on one line, with the declaration before it: each took hundreds of MB to parse.
    "statements": PKGUTIL_INIT + "a;" * (ONE_MB // 2) + "\n",
    "list": PKGUTIL_INIT + "x = [" + "1," * (ONE_MB // 2) + "]\n",
    "calls": PKGUTIL_INIT + "x = f(" + "f()," * (ONE_MB // 4) + ")\n",
}


@pytest.mark.parametrize("kind", sorted(HUGE_INIT_LINES))
def test_a_one_megabyte_init_line_is_kept_unparsed(tmp_path: Path, kind: str) -> None:
    site = tmp_path / "site"
    source = HUGE_INIT_LINES[kind]
    add_distribution(site, "huge", {"ns/__init__.py": source, "ns/mod.py": ""})
    report = scan_json(site)
    assert "NS114" in codes(report)
    result = run("strip", str(site))
    assert_clean_exit(result, {0})
    assert (site / "ns" / "__init__.py").read_text() == source


def test_an_init_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    site = tmp_path / "site"
    add_distribution(site, "huge", {"ns/__init__.py": PKGUTIL_INIT + "#" * MAX_INIT_BYTES + "\n", "ns/mod.py": ""})
    report = scan_json(site)
    [finding] = [f for f in report["findings"] if f["code"] == "NS114"]
    assert "byte limit" in finding["message"]


def test_the_worst_file_under_the_token_limit_parses_in_bounded_memory(tmp_path: Path) -> None:
    site = tmp_path / "site"
    statements = (MAX_INIT_TOKENS - 100) // 2
    add_distribution(site, "worst", {"ns/__init__.py": PKGUTIL_INIT + "a;" * statements + "\n", "ns/mod.py": ""})
    report = scan_json(site)
    [finding] = [f for f in report["findings"] if f["code"] == "NS110"]  # parsed: a hybrid
    assert len(finding["blocking"]) == 10  # the first few named, the rest counted
    assert f"and {statements - 10} more" in finding["message"]


def test_a_large_docstring_is_parsed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    source = '"""' + "word " * 150_000 + '"""\n' + PKGUTIL_INIT
    add_distribution(site, "doc", {"ns/__init__.py": source, "ns/mod.py": ""})
    assert "NS101" in codes(scan_json(site))  # 750 KB, two tokens: pure


# -- .pth -------------------------------------------------------------------------------------

def test_a_four_megabyte_pth_line_is_kept_unparsed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    line = "import sys;" + "a+" * (2 << 20) + "a\n"
    add_distribution(site, "huge", {"huge-1.0-nspkg.pth": line, "ns/mod.py": ""})
    assert "NS115" in codes(scan_json(site))
    assert_clean_exit(run("strip", str(site)), {0})
    assert (site / "huge-1.0-nspkg.pth").read_text() == line


def test_a_long_line_under_the_file_limit_is_not_parsed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    line = "import sys;" + "a+" * (MAX_PTH_BYTES // 3) + "a\n"
    add_distribution(site, "long", {"long-1.0-nspkg.pth": line, "ns/mod.py": ""})
    report = scan_json(site)
    assert "NS116" in codes(report)  # not parsed, so not a loader: kept
    assert_clean_exit(run("strip", str(site)), {0})
    assert (site / "long-1.0-nspkg.pth").read_text() == line


# -- namespace_packages.txt -------------------------------------------------------------------

def test_a_repeated_declared_name_is_one_name(tmp_path: Path) -> None:
    site = tmp_path / "site"
    repeated = "zope\n" * (MAX_TEXT_BYTES // 5 - 10)  # 200,000 times, just under the limit
    add_distribution(site, "zope.foo", {"zope/foo/__init__.py": ""},
                     metadata_files={"namespace_packages.txt": repeated + "not a name!\n" + "../etc\n"})
    report = scan_json(site)
    [finding] = [f for f in report["findings"] if f["code"] == "NS104"]
    assert finding["namespaces"] == ["zope"]
    assert len(report["findings"]) < 10


def test_an_oversized_namespace_packages_txt_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "zope.foo", {"zope/foo/__init__.py": ""},
                                 metadata_files={"namespace_packages.txt": "zope\n" * 700_000})  # 3.5 MB
    before = fingerprint(site)
    for command in ("scan", "strip"):
        result = run(command, str(site))
        assert_clean_exit(result, {3})
        assert str(dist_info / "namespace_packages.txt") in result.stderr or "namespace_packages.txt" in result.stderr
    assert fingerprint(site) == before


# -- METADATA -----------------------------------------------------------------------------------

def test_a_long_description_is_not_parsed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    body = ("Lorem ipsum: dolor\n" * (8 << 20 // 19))
    metadata = "Metadata-Version: 2.1\nName: bigdoc\nVersion: 2.0\nSummary: s\n\n" + body
    dist_info = add_distribution(site, "bigdoc", {"bigdoc/__init__.py": ""})
    (dist_info / "METADATA").write_text(metadata)
    result = run("scan", "--json", str(site))
    assert_clean_exit(result, {0, 1})  # NS401: the RECORD's METADATA hash is not checked by scan
    [dist] = json.loads(result.stdout)["distributions"]
    assert (dist["name"], dist["version"]) == ("bigdoc", "2.0")


def test_an_oversized_metadata_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "big", {"big/__init__.py": ""})
    with open(dist_info / "METADATA", "a") as metadata:
        metadata.write("\n" + "x" * MAX_METADATA_BYTES)
    result = run("scan", str(site))
    assert_clean_exit(result, {3})
    assert "METADATA" in result.stderr and "limit" in result.stderr


# -- RECORD and installed-files.txt -------------------------------------------------------------

def test_a_quoted_record_field_over_the_csv_limit_is_a_malformed_record(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "quoted", {"ns/__init__.py": PKGUTIL_INIT, "ns/mod.py": ""})
    record = dist_info / "RECORD"
    record.write_text(record.read_text() + '"' + "x" * 200_000 + '",,\n')
    before = fingerprint(site)
    for command in ("scan", "strip", "check", "import-names"):
        result = run(command, str(site))
        assert_clean_exit(result, {3})
        assert "RECORD" in result.stderr and "field larger than field limit" in result.stderr
    assert fingerprint(site) == before


def test_too_many_record_rows_are_refused_before_they_cost_memory(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "rows", {"ns/__init__.py": PKGUTIL_INIT})
    (dist_info / "RECORD").write_bytes(b"a,,\n" * (MAX_RECORD_ROWS + 1))
    result = run("scan", str(site))
    assert_clean_exit(result, {3})
    assert "RECORD" in result.stderr and "rows" in result.stderr


def test_many_record_rows_under_the_limit_are_read_in_bounded_memory(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "rows", {"ns/__init__.py": PKGUTIL_INIT})
    rows = "".join(f"ns/gone{i}.py,,\n" for i in range(MAX_RECORD_ROWS - 10))
    (dist_info / "RECORD").write_text(rows)
    report = scan_json(site, "--all-records")  # every RECORD is compared with the files
    assert "NS401" in codes(report)


def test_too_many_installed_files_lines_are_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    egg = site / "old-1.0-py3.11.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old\nVersion: 1.0\n")
    (egg / "installed-files.txt").write_bytes(b"../a.py\n" * (MAX_RECORD_ROWS + 1))
    result = run("scan", str(site))
    assert_clean_exit(result, {3})
    assert "installed-files.txt" in result.stderr


# -- ext FILE and the sibling __init__.py --------------------------------------------------------

def _extension_beside(tmp_path: Path) -> tuple[Path, Path]:
    """``root/foo.cpython-311-x86_64-linux-gnu.so`` (not a real binary: enough to be read) and
    the ``root/foo/`` package beside it."""
    root = tmp_path / "root"
    (root / "foo").mkdir(parents=True)
    (root / "foo" / "mod.py").write_text("")
    extension = root / "foo.cpython-311-x86_64-linux-gnu.so"
    extension.write_bytes(b"\x7fELF" + b"\0" * 60)
    return root, extension


@pytest.mark.parametrize("target", ["/dev/zero", "outside", "fifo", "huge"])
def test_ext_file_reads_the_sibling_init_bounded_and_inside(tmp_path: Path, target: str) -> None:
    root, extension = _extension_beside(tmp_path)
    sentinel = Sentinel(tmp_path / "outside")
    init = root / "foo" / "__init__.py"
    if target == "/dev/zero":
        os.symlink("/dev/zero", init)
    elif target == "outside":
        (sentinel.path / "ns.py").write_text(PKGUTIL_INIT)
        sentinel.before = fingerprint(sentinel.path)
        os.symlink(sentinel.path / "ns.py", init)
    elif target == "fifo":
        os.mkfifo(init)
    else:
        init.write_text(PKGUTIL_INIT + "#" * (4 * MAX_INIT_BYTES))
    result = run_limited("ext", "--json", str(extension), memory=MEMORY, timeout=30)
    assert_clean_exit(result, {0, 1})
    # Not read as a namespace declaration: no NS202 "takes over namespace foo" from outside data.
    assert '"NS202"' not in result.stdout
    sentinel.assert_unchanged()


def test_ext_file_still_reads_a_sibling_namespace_declaration(tmp_path: Path) -> None:
    root, extension = _extension_beside(tmp_path)
    (root / "foo" / "__init__.py").write_text(PKGUTIL_INIT)
    result = run_limited("ext", "--json", str(extension), memory=MEMORY)
    assert_clean_exit(result, {1})
    assert '"NS202"' in result.stdout  # the bounded read still sees a real declaration


def test_record_hash_helper_matches() -> None:
    # The helper the tests above use to write RECORDs is the format installer checks.
    assert record_hash(b"") == "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_distinct_deep_record_paths_are_refused_before_they_cost_memory(tmp_path: Path) -> None:
    # 8,000 distinct rows 1,000 levels deep: 16 MB of RECORD that made 16 GB of directory names
    # (and two minutes) in scan, check and import-names.
    site = tmp_path / "site"
    dist_info = add_distribution(site, "deep", {"ns/__init__.py": PKGUTIL_INIT})
    (dist_info / "RECORD").write_text("".join(f"a{i}/" + "x/" * 1000 + "f.py,,\n" for i in range(8000)))
    for command in ("check", "import-names"):  # they read every row of every RECORD
        result = run_limited(command, str(site), memory=MEMORY, timeout=30)
        assert_clean_exit(result, {3})
        assert "RECORD" in result.stderr and "directories" in result.stderr
    # scan and strip read a plain RECORD's rows only when they need them (this one lists no
    # namespace file): they finish within the same limits without reading it.
    for command in ("scan", "strip"):
        assert_clean_exit(run_limited(command, str(site), memory=MEMORY, timeout=30), {0, 1})
    assert not (site / "ns" / "__init__.py").exists()  # the strip went through


def test_distinct_deep_record_paths_in_a_rewritten_record_are_refused(tmp_path: Path) -> None:
    # The same RECORD, but it lists the namespace init a strip removes: the strip reads it in
    # full before rewriting it, and refuses it there, with nothing changed.
    site = tmp_path / "site"
    dist_info = add_distribution(site, "deep", {"ns/__init__.py": PKGUTIL_INIT})
    with open(dist_info / "RECORD", "a") as record:
        record.write("".join(f"a{i}/" + "x/" * 1000 + "f.py,,\n" for i in range(8000)))
    before = fingerprint(site)
    result = run_limited("strip", str(site), memory=MEMORY, timeout=30)
    assert_clean_exit(result, {3})
    assert "RECORD" in result.stderr and "directories" in result.stderr
    assert fingerprint(site) == before


def test_a_few_deep_record_paths_are_read(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = add_distribution(site, "deep", {"ns/__init__.py": PKGUTIL_INIT})
    with open(dist_info / "RECORD", "a") as record:
        record.write("".join(f"a{i}/" + "x/" * 1000 + "f.py,,\n" for i in range(10)))
    for command in ("scan", "check", "import-names"):
        assert_clean_exit(run_limited(command, str(site), memory=MEMORY, timeout=60), {0, 1})


def test_many_rows_in_one_deep_directory_cost_linear_time(tmp_path: Path) -> None:
    # 4,000 rows in one directory 1,000 levels deep (8 MB): import-names joined every prefix
    # of every row and took two minutes; each directory is now registered once.
    site = tmp_path / "site"
    dist_info = add_distribution(site, "deep", {"ns/__init__.py": PKGUTIL_INIT})
    with open(dist_info / "RECORD", "a") as record:
        record.write("".join("x/" * 1000 + f"f{i}.py,,\n" for i in range(4000)))
    for command in ("import-names", "check", "scan"):
        assert_clean_exit(run_limited(command, str(site), timeout=60), {0, 1})
