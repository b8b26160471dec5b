"""Property-based fuzzing of every text input ns-strip parses, through ``scan`` and ``strip``.

Hypothesis writes ``__init__.py`` files, ``-nspkg.pth`` lines, ``namespace_packages.txt``,
RECORD, ``installed-files.txt`` and METADATA (from grammars of real forms, mutations of them and
plain noise) into a staged site dir, then runs the commands in process. Each case asserts what
the user is promised:

- an exit code of the contract's table, and never an exception other than a reported one;
- exit 3: one line naming the problem, and the tree exactly as it was;
- otherwise: ``strip`` removed only files the whitelists call pure (an ``__init__.py`` the
  purity whitelist passes, a ``-nspkg.pth`` of setuptools loaders only, a
  ``namespace_packages.txt``), nothing else changed but RECORDs, and every RECORD row that
  was true before still is, and none names a removed file.

Fixed seeds (``derandomize``) and bounded examples keep the run to well under a minute.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import tempfile
from pathlib import Path

from hostile import fingerprint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nstree import FALLBACK_INIT, PKG_RESOURCES_INIT, PKGUTIL_INIT
from test_purity_generated import init_file

from ns_strip.cli import main
from ns_strip.initfile import Kind, classify_init
from ns_strip.nspkg import parse_nspkg_pth

FUZZ = settings(derandomize=True, max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NSPKG_LINE = (
    "import sys, types, os;has_mfs = sys.version_info > (3, 5);"
    "p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('zope',));"
    "importlib = has_mfs and __import__('importlib.util');has_mfs and __import__('importlib.machinery');"
    "m = has_mfs and sys.modules.setdefault('zope', importlib.util.module_from_spec("
    "importlib.machinery.PathFinder.find_spec('zope', [os.path.dirname(p)])));"
    "m = m or sys.modules.setdefault('zope', types.ModuleType('zope'));"
    "mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)"
)


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# -- generators ------------------------------------------------------------------------------

def mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with bytes flipped, inserted, deleted, or cut short."""
    @st.composite
    def build(draw) -> bytes:
        data = bytearray(base)
        for _ in range(draw(st.integers(1, 4))):
            how = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
            at = draw(st.integers(0, max(0, len(data) - 1)))
            if how == "flip" and data:
                data[at] ^= 1 << draw(st.integers(0, 7))
            elif how == "insert":
                data[at:at] = draw(st.sampled_from([b"(", b")", b"\n", b"\x00", b"\xff", b"'", b'"""', b"\\",
                                                     b"print(1);", b" if 1 else ", b"\t", b"#", b"\r"]))
            elif how == "delete":
                del data[at:at + draw(st.integers(1, 5))]
            elif how == "truncate":
                del data[at:]
            else:
                data += data[: at + 1]
        return bytes(data)
    return build()


INIT_BYTES = st.one_of(
    st.sampled_from([PKGUTIL_INIT, PKG_RESOURCES_INIT, FALLBACK_INIT, ""]).map(str.encode),
    init_file().map(lambda generated: generated[0].encode()),
    mutated(PKGUTIL_INIT.encode()),
    mutated(PKG_RESOURCES_INIT.encode()),
    mutated(FALLBACK_INIT.encode()),
    st.binary(max_size=200),
    st.lists(st.sampled_from(["__path__", " = ", "__import__('pkgutil')", ".extend_path", "(", ")", ",",
                              "__name__", "declare_namespace", "\n", "    ", "try:", "except ImportError:",
                              "pass", "# -*- coding: latin-1 -*-\n", "\ufeff", "'", "lambda: ", "-"]),
             max_size=40).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")),
)

NSPKG_BYTES = st.one_of(
    mutated((NSPKG_LINE + "\n").encode()),
    st.lists(st.sampled_from([NSPKG_LINE, NSPKG_LINE.replace("'zope'", "os.system('x')"),
                              NSPKG_LINE + ";print('x')", "import os", "/some/dir", "# comment", "", "import\t",
                              "import sys;" + "(" * 300 + ")" * 300, "\x00"]),
             max_size=5).map(lambda lines: "\n".join(lines).encode()),
    st.binary(max_size=300),
)

NAME_LINES = st.lists(st.sampled_from(["zope", "zope", "zope.foo", "", "# comment", "not a name", "../etc",
                                       "a" * 300, "zöpe", "x\x00y", "\r", "zope.", ".zope", "1abc"]), max_size=12)

RECORD_ROWS = st.lists(st.one_of(
    st.just("REAL"), st.just("REAL"), st.just("REAL"), st.just("REAL"),
    st.sampled_from(['"quoted,name.py",,', "pkg/a.py,sha256=abc,x1", "/abs/evil.py,,", "../../../../x.py,,",
                     "ns/../../x,,", "a.py,md5=abc,1", '"unterminated,,', "a.py,sha256=abc,1,extra", "", " ",
                     "ns/__init__.py,sha256=wrong,5", "ns/gone.py,,", "C:/x.py,,", "x\x00y,,",
                     '"' + "f" * 140_000 + '",,', "ns\\win.py,,", "\r"]),
    st.text(max_size=60),
), max_size=10)

METADATA_LINES = st.lists(st.sampled_from([
    "Metadata-Version: 2.1", "Name: fuzz", "Name: other", "Version: 1.0", "Version: ", "Name:", "  folded",
    "Summary: a: b", "", "From nobody", "Name: f\u00f6\u00f6", "\x00", "Import-Name: zope", "not a header",
    "Import-Namespace: zope", "Requires-Dist: setuptools",
]), max_size=10)


# -- the staged tree and the checks ----------------------------------------------------------

BASE_FILES = {
    "ns/__init__.py": PKGUTIL_INIT.encode(),
    "ns/sub/__init__.py": b"",
    "ns/sub/mod.py": b"x = 1\n",
    "other/__init__.py": b"y = 2\n",
}
DIST_INFO = "fuzz-1.0.dist-info"


def stage(site: Path, files: dict[str, bytes], *, record: bytes | None = None,
          metadata: bytes | None = None, extra_metadata: dict[str, bytes] | None = None) -> None:
    everything = dict(files)
    everything[f"{DIST_INFO}/METADATA"] = metadata if metadata is not None else \
        b"Metadata-Version: 2.1\nName: fuzz\nVersion: 1.0\n"
    for name, data in (extra_metadata or {}).items():
        everything[f"{DIST_INFO}/{name}"] = data
    rows = []
    for rel, data in everything.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        rows.append(f"{rel},{_hash(data)},{len(data)}\n".encode())
    rows.append(f"{DIST_INFO}/RECORD,,\n".encode())
    (site / DIST_INFO / "RECORD").write_bytes(record if record is not None else b"".join(rows))


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args), stdout=out, stderr=err)  # an exception here fails the test
    return code, out.getvalue(), err.getvalue()


def true_rows(site: Path) -> dict[str, set[str]]:
    """For each RECORD or installed-files.txt: the rows whose file exists with that hash/size."""
    result: dict[str, set[str]] = {}
    for record in site.glob("*.dist-info/RECORD"):
        good = set()
        try:
            rows = list(csv.reader(record.read_text("utf-8").splitlines()))
        except (UnicodeError, csv.Error):
            continue
        for row in rows:
            if len(row) != 3 or not row[1].startswith("sha256="):
                continue
            path = site / row[0]
            try:
                data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
            except OSError:
                data = None
            if data is not None and (_hash(data), str(len(data))) == (row[1], row[2]):
                good.add(row[0])
        result[str(record.relative_to(site))] = good
    return result


def check_scan_and_strip(site: Path) -> None:
    before = fingerprint(site)
    originals = {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    rows_before = true_rows(site)

    code, out, err = run("scan", "--json", str(site))
    assert code in (0, 1, 3), (code, err)
    if code == 3:
        assert len(err.strip().splitlines()) == 1 and err.startswith("ns-strip: error: "), err
    assert fingerprint(site) == before  # scan never changes anything

    code, out, err = run("strip", "--json", str(site))
    assert code in (0, 1, 3), (code, err)
    if code == 3:
        assert len(err.strip().splitlines()) == 1 and err.startswith("ns-strip: error: "), err
        assert fingerprint(site) == before
        return
    report = json.loads(out)
    removed = [path for path in report["removed"] if not path.endswith("/")]
    for path in removed:
        name = path.rpartition("/")[2]
        data = originals[path]
        if name == "__init__.py":
            assert classify_init(data).kind is Kind.PURE, (path, data)
        elif name.endswith("-nspkg.pth"):
            assert all(line.loader for line in parse_nspkg_pth(data)), (path, data)
        else:
            assert name == "namespace_packages.txt", path
        assert not (site / path).exists()
    rewritten = set(report["rewritten"])
    for path, data in originals.items():
        if path not in removed and path not in rewritten and "__pycache__" not in path:
            assert (site / path).read_bytes() == data, path  # nothing else changed
    rows_after = true_rows(site)
    for record, good in rows_before.items():
        assert good - set(removed) <= rows_after.get(record, set()), record
        assert not (set(removed) & rows_after.get(record, set()))


def in_site(test):
    """Give the test a fresh site dir (hypothesis runs the body many times per test)."""
    def wrapper(*args, **kwargs):
        with tempfile.TemporaryDirectory() as tmp:
            return test(Path(tmp) / "site", *args, **kwargs)
    wrapper.__name__ = test.__name__
    return wrapper


# -- the properties --------------------------------------------------------------------------

@settings(FUZZ, max_examples=120)
@given(INIT_BYTES, INIT_BYTES)
def test_fuzzed_init_files(top: bytes, nested: bytes) -> None:
    @in_site
    def body(site: Path) -> None:
        stage(site, {**BASE_FILES, "ns/__init__.py": top, "ns/sub/__init__.py": nested})
        check_scan_and_strip(site)
    body()


@FUZZ
@given(NSPKG_BYTES)
def test_fuzzed_nspkg_pth(data: bytes) -> None:
    @in_site
    def body(site: Path) -> None:
        stage(site, {**BASE_FILES, "fuzz-1.0-nspkg.pth": data})
        check_scan_and_strip(site)
    body()


@FUZZ
@given(NAME_LINES, st.sampled_from(["\n", "\r\n", "\r"]))
def test_fuzzed_namespace_packages_txt(lines: list[str], end: str) -> None:
    @in_site
    def body(site: Path) -> None:
        text = end.join(lines).encode("utf-8", "surrogatepass")
        stage(site, BASE_FILES, extra_metadata={"namespace_packages.txt": text, "top_level.txt": text})
        check_scan_and_strip(site)
    body()


@FUZZ
@given(RECORD_ROWS, st.sampled_from(["\n", "\r\n"]))
def test_fuzzed_record(rows: list[str], end: str) -> None:
    @in_site
    def body(site: Path) -> None:
        real = [f"{rel},{_hash(data)},{len(data)}" for rel, data in BASE_FILES.items()]
        lines = []
        for row in rows:
            lines.append(real.pop() if row == "REAL" and real else ("" if row == "REAL" else row))
        record = end.join(lines + real + [f"{DIST_INFO}/RECORD,,"]).encode("utf-8", "surrogatepass")
        stage(site, BASE_FILES, record=record)
        check_scan_and_strip(site)
    body()


@FUZZ
@given(st.lists(st.sampled_from(["../ns/__init__.py", "../ns/__init__.py", "../ns/sub/mod.py", "../ns/sub/mod.py",
                                 "PKG-INFO", "namespace_packages.txt", "", "../../../../etc/x",
                                 "/abs", "../ns/../../x", "a\x00b", "../" * 40 + "x", "ü", "\\win"]), max_size=8))
def test_fuzzed_installed_files_txt(lines: list[str]) -> None:
    @in_site
    def body(site: Path) -> None:
        for rel, data in BASE_FILES.items():
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_bytes(data)
        egg = site / "fuzz-1.0-py3.11.egg-info"
        egg.mkdir()
        (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: fuzz\nVersion: 1.0\n")
        (egg / "namespace_packages.txt").write_text("ns\n")
        (egg / "installed-files.txt").write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
        check_scan_and_strip(site)
    body()


@FUZZ
@given(METADATA_LINES, st.binary(max_size=40))
def test_fuzzed_metadata(lines: list[str], noise: bytes) -> None:
    @in_site
    def body(site: Path) -> None:
        metadata = "\n".join(lines).encode("utf-8", "surrogatepass") + noise
        stage(site, BASE_FILES, metadata=metadata)
        check_scan_and_strip(site)
    body()


# -- the parsers alone, many more examples (no tree, no command) -------------------------------

PARSERS = settings(derandomize=True, max_examples=1500, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PARSERS
@given(st.one_of(INIT_BYTES, NSPKG_BYTES, st.binary(max_size=2000)))
def test_the_parsers_never_raise(data: bytes) -> None:
    from ns_strip.distributions import metadata_headers, parse_declared_names

    result = classify_init(data)
    assert result.kind in Kind
    if result.kind in (Kind.HYBRID, Kind.UNPARSEABLE, Kind.OVERSIZED):
        assert result.style is not None  # every namespace-like verdict names a style
    for line in parse_nspkg_pth(data):
        assert line.loader or line.namespace is None
    names = parse_declared_names(data)
    assert len(names) == len(set(names))
    assert data.startswith(metadata_headers(data))
