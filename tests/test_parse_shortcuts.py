"""The shortcuts that read plain RECORD rows and METADATA headers fast give exactly what
installer's parser and the core-metadata reader give (and, on current libraries, packaging's\nparse_email), and leave everything else to those parsers."""

from __future__ import annotations

import pytest
from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from ns_strip import coremetadata, distributions
from ns_strip.coremetadata import read_fields, single
from ns_strip.errors import BadInputError

RECORD_LINES = [
    "pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n",
    "pkg/mod.py,sha256=abc,12\r\n",
    "pkg/mod.py,sha256=abc,12\r",
    "pkg/mod.py,sha256=abc,12",
    "pkg-1.0.dist-info/RECORD,,\n",
    "pkg\\win\\path.py,,\n",
    "../../../bin/tool,sha256=abc,3\n",
    "./pkg/a.py,,\n",
    "pkg//double.py,,\n",
    "pkg/./dot.py,,\n",
    "pkg/.hidden,,\n",
    "pkg/dir/,,\n",
    '"quoted,name.py",sha256=abc,1\n',
    '"pkg/q.py",,\n',
    "pkg/a.py,sha256=abc,1,extra\n",
    "pkg/a.py,sha256=abc\n",
    ",sha256=abc,1\n",
    "pkg/a.py,nohash,1\n",
    "pkg/a.py,unknownalgo=abc,1\n",
    "pkg/a.py,sha256=abc,x1\n",
    "pkg/a.py,sha256=abc, 1\n",
    "pkg/a.py,sha256=abc,+1\n",
    "pkg/a.py,sha256=abc,1_0\n",
    "pkg/a.py,sha256=abc,\u00b2\n",
    "pkg/a.py,sha256=abc,\u0661\n",
    "pkg/a.py,sha256=,1\n",
    "pkg/a.py,=abc,1\n",
    "pkg/a.py,md5=abc,1\n",
    "pkg/a\x0c.py,,\n",
    " ,,\n",
    "pkg/a.py,sha256=abc,1\x0b",
    "C:/evil.py,,\n",
    "/abs/evil.py,,\n",
    "\\abs\\evil.py,,\n",
    "../../../../escape.py,,\n",
    "pkg/ünï.py,sha256=abc,1\n",
]


def _reference(data: bytes, climb_limit: int = 3) -> list[tuple[str, str | None]]:
    """What the parser did before the shortcut: installer's parser for every row."""
    result = []
    for number, line in enumerate(data.decode().splitlines(keepends=True), start=1):
        if not line.strip():
            result.append((line, None))
            continue
        try:
            rows = list(parse_record_file([line]))
            for row in rows:
                RecordEntry.from_elements(*row)
        except (InvalidRecordEntry, ValueError) as exc:
            message = getattr(exc, "issues", None) or str(exc)
            raise BadInputError(f"line {number} is not a valid RECORD row: {message}", "RECORD") from exc
        if len(rows) != 1:
            raise BadInputError(f"line {number} is not a valid RECORD row", "RECORD")
        # installer >= 0.7 turns "\\" into "/" itself; 0.6 (Debian 12) leaves it to the caller.
        result.append((line, distributions._check_path(rows[0][0].replace("\\", "/"), "RECORD", climb_limit)))
    return result


def _outcome(parse, data: bytes) -> object:
    try:
        return parse(data)
    except BadInputError as exc:
        return str(exc)


@pytest.mark.parametrize("line", RECORD_LINES)
def test_record_row_shortcut_agrees_with_installer(line: str) -> None:
    data = ("a.py,,\n" + line + "\nb.py,sha256=abc,1\n").encode()
    expected = _outcome(_reference, data)
    got = _outcome(lambda d: [(r.text, r.path) for r in distributions._parse_record(d, "RECORD", 3)], data)
    assert got == expected


@pytest.mark.parametrize("line", RECORD_LINES)
def test_record_row_shortcut_takes_only_plain_rows(line: str) -> None:
    plain = distributions._plain_record_path(line)
    if plain is None:
        return
    rows = list(parse_record_file([line]))
    assert len(rows) == 1 and rows[0][0].replace("\\", "/") == plain  # installer 0.6 keeps "\\"
    RecordEntry.from_elements(*rows[0])  # a row the shortcut takes is one installer accepts


def test_rejected_rows_keep_their_message() -> None:
    with pytest.raises(BadInputError, match="line 2 is not a valid RECORD row.*non-integer"):
        distributions._parse_record(b"a.py,,\nb.py,sha256=x,big\n", "RECORD", 0)


METADATA = [
    b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n",
    b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\nName: body-is-not-a-header\n",
    b"Metadata-Version: 2.1\r\nName: foo\r\nVersion: 1.0\r\n",
    b"Name:  spaced \nVersion:\t2.0\n",
    b"name: lower\nVERSION: 3\n",
    b"Name: foo\nName: bar\nVersion: 1\n",
    b"Name: foo\nVersion: 1\nVersion: 2\n",
    b"Name: folded\n  continued\nVersion: 1\n",
    b"From nobody\nName: foo\nVersion: 1\n",
    b"Name: foo\n",
    b"Version: 1\n",
    b"\nName: foo\nVersion: 1\n",
    b"Name: f\xc3\xb6\xc3\xb6\nVersion: 1\n",
    b"Name: f\xf6\xf6\nVersion: 1\n",
    b"Name: foo\nnot a header\nVersion: 1\n",
    b"Name : foo\nVersion: 1\n",
    b": foo\nName: foo\nVersion: 1\n",
    b"Name: foo\nVersion: 1",
    b"Name:\nVersion: 1\n",
    b"Name: foo\x0cbar\nVersion: 1\n",
    b"Summary: a: b\nName: foo\nVersion: 1\n",
    # The description body is not the header block: non-ASCII or CR line ends there are read by
    # the shortcut (the common case of a real project's METADATA).
    b"Name: foo\nVersion: 1.0\n\nD\xc3\xa9j\xc3\xa0 vu \xe2\x9c\x93\r\nsecond line\r\n",
    b"Name: foo\nVersion: 1.0\n\n\xff\xfe not UTF-8\n",
    b"Name: f\xc3\xb6\xc3\xb6\nVersion: 1\n\nbody\n",
    b"Name: foo\rVersion: 1\n\nbody\n",
]


@pytest.mark.parametrize("data", METADATA)
def test_metadata_shortcut_agrees_with_the_email_parser(data: bytes) -> None:
    simple = distributions._simple_name_and_version(data)
    if simple is None:
        return  # left to read_fields
    fields = coremetadata.read_fields(data)
    assert simple == (coremetadata.single(fields, "Name"), coremetadata.single(fields, "Version"))


IMPORT_METADATA = METADATA + [
    b"Metadata-Version: 2.5\nName: x\nImport-Name:\n",
    b"Metadata-Version: 2.5\nName: x\nImport-Name: a\nImport-Name: b; private\nImport-Namespace: ns\n",
    b"Metadata-Version: 2.5\nName: x\nimport-name: a\nIMPORT-NAMESPACE: ns\nImport-Namespace:\n",
    b"Metadata-Version: 2.5\nName: x\nImport-Name: \xc3\xa9t\xc3\xa9\n",
    b"Metadata-Version: 2.5\nName: x\nImport-Name: \xe9t\xe9\nImport-Namespace: ok\n",
    b"Metadata-Version: 2.5\nName: x\nImport-Name: a\n folded\n",
    b"Metadata-Version: 2.5\nName: x\n\nImport-Name: in-the-body\n",
]


@pytest.mark.current_libraries  # packaging.metadata: 23.1; Import-Name fields: 25.1
@pytest.mark.parametrize("data", IMPORT_METADATA)
def test_core_metadata_reader_agrees_with_packaging(data: bytes) -> None:
    from packaging.metadata import parse_email

    raw, _ = parse_email(data)
    fields = coremetadata.read_fields(data)
    assert (coremetadata.single(fields, "Name"), coremetadata.single(fields, "Version")) == (
        raw.get("name"), raw.get("version"))
    assert coremetadata.import_fields(data) == (raw.get("import_names"), raw.get("import_namespaces"))


def test_core_metadata_reader_on_its_own() -> None:
    data = b"Metadata-Version: 2.5\nName: x\nImport-Name:\nImport-Namespace: a\nImport-Namespace: b\n"
    assert coremetadata.import_fields(data) == ([], ["a", "b"])
    assert coremetadata.import_fields(b"Name: x\n") == (None, None)
    assert coremetadata.import_fields(b"Name: x\nImport-Name: \xe9\n") == (None, None)
    assert coremetadata.single(coremetadata.read_fields(b"Name: a\nName: b\n"), "name") is None


def test_metadata_shortcut_takes_the_common_case() -> None:
    assert distributions._simple_name_and_version(METADATA[0]) == ("foo", "1.0")
    assert distributions._simple_name_and_version(METADATA[1]) == ("foo", "1.0")
    assert distributions._simple_name_and_version(METADATA[-4]) == ("foo", "1.0")
    assert distributions._simple_name_and_version(METADATA[-3]) == ("foo", "1.0")
    assert distributions._simple_name_and_version(METADATA[-2]) is None  # non-ASCII headers
    assert distributions._simple_name_and_version(METADATA[-1]) is None  # a CR in the headers


@pytest.mark.parametrize("data", METADATA + [
    b"Name: foo\nVersion: 1\n\nName: in-the-body\nVersion: 9\n",
    b"Name: foo\r\nVersion: 1\r\n\r\nVersion: 9\r\n",
    b"Name: foo\rVersion: 1\r\rVersion: 9\r",
    b"Name: foo\r\n\nVersion: 9\n",
    b"\n\nName: foo\nVersion: 1\n",
    b"Name: foo\nVersion: 1\n\n" + b"long description line\n" * 10_000,
])
def test_metadata_headers_give_what_the_whole_file_gives(data: bytes) -> None:
    # Only the header block goes to the email parser: the same name and version, without
    # handing it a description of megabytes.
    head = distributions.metadata_headers(data)
    assert len(head) <= len(data)
    whole = read_fields(data)
    headers = read_fields(head)
    assert (single(headers, "Name"), single(headers, "Version")) == (single(whole, "Name"), single(whole, "Version"))
