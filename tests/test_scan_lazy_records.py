"""The scan reads RECORD rows only when it needs them (issue 15).

A plain RECORD is kept as text: who lists a path is answered by searching it, and its rows are
parsed (and validated) only for a change that rewrites it. Everything here checks that the
shortcuts give exactly what parsing every row gives, on generated RECORDs of every shape; and
that bytecode caches, listed only when asked for, list as an eager walk would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nstree import PKGUTIL_INIT, add_distribution, run_cli

from ns_strip import distributions
from ns_strip.distributions import Owners, load_distributions
from ns_strip.errors import BadInputError
from ns_strip.sources import DEFERRED, TreeSource, listed_items

CLIMB_LIMIT = 3

# Path components and row shapes, plain and not: what pip writes, and what a hostile or old
# tool may write (quotes, dots, doubled or trailing slashes, backslashes, blanks, bad columns).
component = st.sampled_from(["zope", "a", "b", "__init__.py", "__pycache__", "x.py", "ns", "..", ".", ".hidden",
                             "sp ace", "ünï", "x.dist-info", "c:", "a,b"])
path_text = st.lists(component, min_size=1, max_size=4).map("/".join)
hash_text = st.sampled_from(["", "sha256=abc", "sha256=", "md5=x", "nothash", "sha256=a=b"])
size_text = st.sampled_from(["", "1", "12", "x", "+1"])


@st.composite
def record_row(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "plain", "plain", "climb", "quoted", "odd", "blank", "backslash"]))
    path = draw(path_text)
    if kind == "climb":
        path = "../" * draw(st.integers(1, 4)) + path
    elif kind == "backslash":
        path = path.replace("/", "\\")
    if kind == "blank":
        return draw(st.sampled_from(["", " ", "\t"])) + "\n"
    if kind == "quoted":
        return f'"{path}",{draw(hash_text)},{draw(size_text)}\n'
    if kind == "odd":
        return draw(st.sampled_from([f"{path}\n", f"{path},,,\n", f"/{path},,\n", f"{path}//x,,\n", f"{path}/,,\n",
                                     f" {path},,\n", f"{path},,\r\n"]))
    return f"{path},{draw(hash_text)},{draw(size_text)}\n"


def _outcome(action):
    try:
        return action()
    except BadInputError as exc:
        return ("refused", str(exc))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(record_row(), max_size=12), last_newline=st.booleans(),
       probes=st.lists(path_text, max_size=6))
def test_a_record_kept_as_text_answers_as_its_parsed_rows(rows: list[str], last_newline: bool,
                                                          probes: list[str]) -> None:
    text = "".join(rows)
    if not last_newline:
        text = text.rstrip("\n")
    data = text.encode()
    parsed = _outcome(lambda: distributions._parse_record(data, "RECORD", CLIMB_LIMIT))
    record = _outcome(lambda: distributions.read_record(data, "RECORD", CLIMB_LIMIT))
    if isinstance(record, tuple):
        # Refused at once: then parsing every row refuses it too (a climb out of the root, the
        # journal, a bad row in a RECORD that is not plain), never a plain RECORD's bad column.
        assert isinstance(parsed, tuple)
        return
    lines = _outcome(lambda: record.lines)
    assert lines == parsed or (isinstance(lines, tuple) and lines[0] == parsed[0] == "refused")
    if isinstance(parsed, tuple):
        return  # a plain RECORD with a bad column: refused when its rows are needed (above)
    fresh = distributions.read_record(data, "RECORD", CLIMB_LIMIT)  # answers before any parse
    paths = [line.path for line in parsed if line.path is not None]
    assert fresh.row_count == len(paths)
    assert fresh.top_names() == {path.partition("/")[0] for path in paths}
    assert fresh.paths_ending((".py", ".pth")) == [p for p in paths if p.endswith((".py", ".pth"))]
    for probe in probes + paths:
        assert fresh.lists(probe) == (probe in paths), probe
        directory = probe.rpartition("/")[0] or probe
        assert fresh.lists_below(directory) == any(p.startswith(directory + "/") for p in paths), directory
    named = fresh.paths_named(("__init__.", "/x.py,"))
    assert sorted(named) == sorted(line.path for line in parsed if line.path is not None
                                   and any(mark in line.text for mark in ("__init__.", "/x.py,")))


def test_pip_written_records_are_kept_as_text_and_odd_ones_parsed_at_once() -> None:
    plain = b"zope/__init__.py,sha256=abc,3\nzope/x.py,,\n../../../bin/x,sha256=abc,3\n"
    assert not distributions.read_record(plain, "RECORD", CLIMB_LIMIT).is_parsed
    for odd in (b'"zope/__init__.py",,\n', b"zope/./x.py,,\n", b"zope\\x.py,,\n", b"\nzope/x.py,,\n"):
        assert distributions.read_record(odd, "RECORD", CLIMB_LIMIT).is_parsed, odd
    # What decides safety is checked at once even in a plain RECORD: a climb out of the root.
    with pytest.raises(BadInputError, match="outside the root"):
        distributions.read_record(b"zope/x.py,,\n../../../../etc/passwd,,\n", "RECORD", CLIMB_LIMIT)


def test_owners_are_those_parsing_every_row_gives(tmp_path: Path) -> None:
    site = tmp_path / "site"
    add_distribution(site, "zope.a", {"zope/__init__.py": PKGUTIL_INIT, "zope/a/__init__.py": "", "x-nspkg.pth": ""})
    add_distribution(site, "zope.b", {"zope/b/__init__.py": "", "zope/b/m.py": ""})
    odd = add_distribution(site, "odd", {"zope/odd.py": "", "top.py": ""})
    with open(odd / "RECORD", "a") as record:
        record.write('"zope/./quoted.py",,\nzope//doubled.py,,\n')
    dists = load_distributions(TreeSource(site))
    owners = Owners(dists)
    every_path = {path for dist in dists for path in dist.files} | {"zope/quoted.py", "nothere.py", "zope"}
    for path in sorted(every_path):
        expected = [dist.name for dist in dists if path in dist.files]
        assert owners.of_path(path) == expected, path
    directories = {path.rpartition("/")[0] for path in every_path} - {""}
    for directory in sorted(directories | {"zope/b", "nothere"}):
        expected = sorted({dist.name for dist in dists if any(p.startswith(directory + "/") for p in dist.files)})
        assert owners.of_directory(directory) == expected, directory


def _eager_listing(site: Path) -> dict[str, tuple[list[str], list[str]]]:
    found = {}
    for directory, subdirs, files in os.walk(site):
        rel = os.path.relpath(directory, site).replace(os.sep, "/")
        found["" if rel == "." else rel] = (sorted(files), sorted(subdirs))
    return found


def test_bytecode_caches_are_listed_when_asked_for_as_a_whole_walk_lists_them(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for name in ("a/__init__.py", "a/__pycache__/__init__.cpython-311.pyc", "a/__pycache__/deep/x.py",
                 "a/__pycache__/__pycache__/y.pyc", "a/b/__pycache__/m.pyc", "__pycache__/top.pyc", "m.py"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"")
    source = TreeSource(site)
    listed = dict(listed_items(source.dirs))
    assert not any("__pycache__" in directory for directory in listed)
    assert dict.get(source.dirs, "a/__pycache__") is DEFERRED  # known, not listed
    assert "a/__pycache__/deep" in source.dirs  # below a cache not listed yet: listed to answer
    assert source.dirs.get("a/__pycache__/__pycache__").files == ["y.pyc"]
    eager = _eager_listing(site)
    assert {directory: (listing.files, listing.subdirs) for directory, listing in source.dirs.items()} == eager
    assert len(source.dirs) == len(eager)


def test_scan_compares_with_the_files_only_the_records_it_is_asked_to(tmp_path: Path) -> None:
    site = tmp_path / "site"
    add_distribution(site, "zope.a", {"zope/__init__.py": PKGUTIL_INIT, "zope/a/__init__.py": ""})
    add_distribution(site, "other", {"other/__init__.py": "", "other/gone.py": ""})
    (site / "other" / "gone.py").unlink()
    code, out, _ = run_cli("scan", "--json", str(site))
    assert code == 0 and "NS401" not in {f["code"] for f in json.loads(out)["findings"]}
    code, out, _ = run_cli("scan", "--json", "--all-records", str(site))
    [finding] = [f for f in json.loads(out)["findings"] if f["code"] == "NS401"]
    assert finding["missing"] == ["other/gone.py"] and code == 0


def test_a_bad_row_stops_only_what_needs_the_rows(tmp_path: Path) -> None:
    site = tmp_path / "site"
    add_distribution(site, "zope.a", {"zope/__init__.py": PKGUTIL_INIT, "zope/a/__init__.py": ""})
    other = add_distribution(site, "other", {"other/__init__.py": ""})
    with open(other / "RECORD", "a") as record:
        record.write("other/y.py,md5-is-not-a-hash,notanumber\n")
    code, out, err = run_cli("scan", "--json", str(site))
    assert code == 0, err  # the scan never needs that RECORD's rows
    assert json.loads(out)["namespaces"][0]["distributions"] == ["zope.a"]
    code, _, err = run_cli("scan", "--all-records", str(site))
    assert code == 3 and "is not a valid RECORD row" in err  # reading every row meets it
    code, _, err = run_cli("strip", str(site))  # rewrites zope.a's RECORD only
    assert code == 0, err
    assert not (site / "zope" / "__init__.py").exists()


def test_a_file_name_with_a_comma_or_a_line_end_is_not_taken_for_rows() -> None:
    # Linux file names may hold both; a search of the text would read them as row boundaries.
    record = distributions.read_record(b"x,sha256=abc,1\ny-nspkg.pth,sha256=abc,1\n", "RECORD", CLIMB_LIMIT)
    assert not record.is_parsed
    assert not record.lists("x\ny-nspkg.pth") and not record.lists("x,sha256=abc")
    assert not record.lists_below("x\ny") and record.lists("y-nspkg.pth")


def test_caches_nested_in_caches_are_listed_whole_whatever_is_asked_first(tmp_path: Path) -> None:
    # A hostile tree may nest caches in caches: the first cache on the way down is deferred,
    # and listing it lists everything below it, so nothing deferred is left behind a listing.
    site = tmp_path / "site"
    chain = "a/" + "/".join(["__pycache__"] * 300)
    (site / chain).mkdir(parents=True)
    (site / chain / "bottom.pyc").write_bytes(b"")
    (site / "a" / "__init__.py").write_bytes(b"")
    eager = _eager_listing(site)
    asked_deepest = TreeSource(site)
    assert asked_deepest.dirs.get(chain).files == ["bottom.pyc"]
    asked_nothing = TreeSource(site)
    for source in (asked_deepest, asked_nothing):
        assert {d: (listing.files, listing.subdirs) for d, listing in source.dirs.items()} == eager
        assert not any(listing is DEFERRED for listing in dict.values(source.dirs))
