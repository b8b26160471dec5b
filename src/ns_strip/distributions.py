"""The distributions installed in a source: their metadata, the files they list, the
namespaces they declare.

RECORD is parsed with installer's parser and ``installed-files.txt`` (egg-info) line by line;
metadata with packaging's lenient parser, since installed trees hold metadata of every age. A
distro-sized tree has hundreds of thousands of RECORD rows, so the plain ones (and plain
METADATA headers) are read by a shortcut that gives exactly what those parsers give, and only
the rest go to them.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from .errors import BadInputError, ShippedJournalError
from .journalplan import JOURNAL_DIR
from .safeio import MAX_METADATA_BYTES, MAX_RECORD_BYTES, MAX_TEXT_BYTES
from .slotted import Slotted
from .sources import Source, gc_paused, join, normalise_record_path

NAMESPACE_PACKAGES_TXT = "namespace_packages.txt"


class RecordLine(Slotted):
    """One line of a RECORD or installed-files.txt, kept as written so rewrites change nothing else."""

    __slots__ = ("text", "path")  # one per installed file: a distro-sized tree has 200,000

    text: str  # the raw line with its line ending
    path: str | None  # normalised relative to the source root; None for a blank line

    def __init__(self, text: str, path: str | None) -> None:
        self.text = text
        self.path = path


class Distribution:
    """One installed distribution. Compared by identity (two with the same fields are still two
    distributions); not slotted: :attr:`files` is cached in its ``__dict__``."""

    name: str
    version: str
    metadata_dir: str  # relative to the source root
    record_path: str | None  # RECORD (dist-info) or installed-files.txt (egg-info)
    record: Record | None  # its rows, parsed in full only when first needed
    declared_namespaces: list[str] | None  # None: no namespace_packages.txt

    def __init__(self, name: str, version: str, metadata_dir: str, record_path: str | None, record: Record | None,
                 declared_namespaces: list[str] | None) -> None:
        self.name = name
        self.version = version
        self.metadata_dir = metadata_dir
        self.record_path = record_path
        self.record = record
        self.declared_namespaces = declared_namespaces

    def __repr__(self) -> str:
        return (f"Distribution(name={self.name!r}, version={self.version!r}, metadata_dir={self.metadata_dir!r}, "
                f"record_path={self.record_path!r}, record={self.record!r}, "
                f"declared_namespaces={self.declared_namespaces!r})")

    @property
    def record_lines(self) -> list[RecordLine]:
        """Every row, validated: a row that is not valid raises BadInputError (exit 3) here,
        which is before any change that rewrites this RECORD."""
        return self.record.lines if self.record is not None else []

    @functools.cached_property
    def files(self) -> list[str]:
        # Asked for many times per command; the lines never change after loading: a rewrite
        # produces new bytes, not new lines.
        return [line.path for line in self.record_lines if line.path is not None]

    @property
    def file_count(self) -> int:
        return self.record.row_count if self.record is not None else 0

    def lists(self, path: str) -> bool:
        """Whether a row of this RECORD names ``path`` (normalised, relative to the root)."""
        return self.record is not None and self.record.lists(path)

    def lists_below(self, directory: str) -> bool:
        """Whether a row of this RECORD names a file below ``directory``."""
        return self.record is not None and self.record.lists_below(directory)

    def paths_ending(self, suffixes: tuple[str, ...]) -> list[str]:
        """The paths of the rows that end with one of ``suffixes``."""
        return self.record.paths_ending(suffixes) if self.record is not None else []

    @property
    def namespace_packages_txt(self) -> str | None:
        if self.declared_namespaces is None:
            return None
        return join(self.metadata_dir, NAMESPACE_PACKAGES_TXT)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "metadata_dir": self.metadata_dir,
            "files": self.file_count,
        }


class Record:
    """The rows of one RECORD or installed-files.txt.

    A distro-sized tree has 200,000 rows and most of them are never looked at: a scan asks who
    owns a few hundred namespace files, a strip rewrites the RECORDs of the few distributions it
    changes. So a *plain* RECORD (every row ``path,hash,size`` with a path in normal form and
    nothing to unquote: what pip and installer write) is kept as text. Who lists a path is
    answered by searching that text for the row, and the rows are parsed and validated in full
    only when they are needed: for a rewrite, right before it. Everything that decides safety is
    still checked when the RECORD is read: its size and row count, UTF-8, and every row that
    climbs out of the site dir (``../``) or names ns-strip's journal. Any other RECORD (quoted or
    odd rows, an egg's installed-files.txt) is parsed and validated in full at once.
    """

    def __init__(self, path: str, *, text: str | None = None, lines: list[RecordLine] | None = None,
                 climb_limit: int = 0) -> None:
        self.path = path
        self._text = text  # set while the rows are not parsed (a plain RECORD)
        self._lines = lines
        self._climb_limit = climb_limit
        self._paths: frozenset[str] | None = None
        self._row_count: int | None = None  # asked for by the row limits and by every report

    @property
    def lines(self) -> list[RecordLine]:
        if self._lines is None:
            assert self._text is not None
            lines = _parse_record_text(self._text, self.path, self._climb_limit)
            _count_directories((line.path for line in lines if line.path is not None), self.path, set(), 0)
            self._lines = lines
        return self._lines

    @property
    def line_count(self) -> int:
        """Rows and blank lines: what the row limits count."""
        return len(self._lines) if self._lines is not None else self.row_count

    @property
    def is_parsed(self) -> bool:
        return self._lines is not None

    @property
    def row_count(self) -> int:
        if self._row_count is None:
            if self._lines is not None:
                self._row_count = sum(1 for line in self._lines if line.path is not None)
            else:  # a plain RECORD: one row per line, none blank
                text = self._text or ""
                self._row_count = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return self._row_count

    def _parsed_paths(self) -> frozenset[str]:
        if self._paths is None:
            self._paths = frozenset(line.path for line in self.lines if line.path is not None)
        return self._paths

    def _searchable(self, path: str) -> bool:
        """Whether a question about ``path`` may be answered by searching the text: the rows
        are not parsed yet, and the path holds nothing a plain row cannot (a file name may hold
        a comma or a line end, which a search would take for a row's end)."""
        return self._lines is None and self._text is not None and not ("," in path or "\n" in path or "\r" in path)

    def lists(self, path: str) -> bool:
        if not self._searchable(path):
            return path in self._parsed_paths()
        text = self._text
        assert text is not None
        # A plain row's first field is its path exactly as parsing gives it.
        return text.startswith(path + ",") or f"\n{path}," in text

    def lists_below(self, directory: str) -> bool:
        prefix = directory + "/"
        if not self._searchable(directory):
            return any(path.startswith(prefix) for path in self._parsed_paths())
        text = self._text
        assert text is not None
        return text.startswith(prefix) or "\n" + prefix in text

    def paths_ending(self, suffixes: tuple[str, ...]) -> list[str]:
        text = self._text
        if text is None or self._lines is not None:
            return [path for path in self._parsed_paths_in_order() if path.endswith(suffixes)]
        return [path for path in _PATH_FIELD.findall(text) if path.endswith(suffixes)]

    def _parsed_paths_in_order(self) -> list[str]:
        return [line.path for line in self.lines if line.path is not None]

    def paths_named(self, marks: Sequence[str]) -> list[str]:
        """The paths of the rows whose text holds one of ``marks`` (each row once)."""
        text = self._text
        if text is None or self._lines is not None:
            return [line.path for line in self.lines
                    if line.path is not None and any(mark in line.text for mark in marks)]
        found: dict[int, str] = {}
        for mark in marks:
            at = text.find(mark)
            while at >= 0:
                start = text.rfind("\n", 0, at) + 1
                end = text.find("\n", at)
                end = len(text) if end < 0 else end
                found.setdefault(start, text[start:end].partition(",")[0])
                at = text.find(mark, end)
        return [found[start] for start in sorted(found)]

    def top_names(self) -> set[str]:
        """The first component of every row's path (``..`` for rows that climb)."""
        text = self._text
        if text is None or self._lines is not None:
            return {path.partition("/")[0] for path in self._parsed_paths()}
        return set(_FIRST_COMPONENT.findall(text))


# The path of each row of a plain RECORD.
_PATH_FIELD = re.compile(r"^([^,\n]*),", re.MULTILINE)
# The first path component of the rows of a plain RECORD, once for each run of consecutive rows
# that share it (RECORDs list a package's files together): a few matches per RECORD, not one
# per row.
_FIRST_COMPONENT = re.compile(r"^([^/,\n]*)[/,][^\n]*(?:\n\1[/,][^\n]*)*", re.MULTILINE)
# What a plain RECORD never holds: quotes or escapes, other line ends, NULs, Windows paths (one
# pass over the bytes); blank or indented rows, absolute paths, empty components or a trailing
# slash. All of these need parsing to read. A RECORD with non-ASCII paths is parsed too.
_NOT_PLAIN_BYTES = b'"\\\r\x00\x0b\x0c\x1c\x1d\x1e:'
# Two searches, not one per mark: each starts with a literal character the regular expression
# engine finds as fast as ``in`` finds a mark (seven ``in`` scans of a RECORD cost five times more).
_NOT_PLAIN_ROW_START = re.compile("\n[\n \t/,]")
_NOT_PLAIN_COMPONENT = re.compile("/[/,]")
# A row that climbs out of the site dir (scripts at ../../../bin): plain when the rest of its
# path has no dot component; its climb is checked when the RECORD is read.
_CLIMBING_PATH = re.compile(r"(?:\.\./)+[^./][^,]*")


def _is_plain_record(text: str, record_path: str, climb_limit: int) -> bool:
    """Whether ``text``, ASCII holding none of ``_NOT_PLAIN_BYTES``, is a plain RECORD (see
    :class:`Record`). The rows that climb out of the site dir are checked here (BadInputError
    past ``climb_limit``)."""
    if (not text or text[0] in " \t\n,/" or _NOT_PLAIN_ROW_START.search(text) is not None
            or _NOT_PLAIN_COMPONENT.search(text) is not None):
        return False
    # Components starting with a dot: ".", "..", hidden files, the journal. Only whole rows that
    # climb are plain; each is checked now, since a climb decides what a strip may touch.
    start = 0
    while True:
        hits = [i for i in (text.find("/.", start), text.find("\n.", start)) if i >= 0]
        if start == 0 and text.startswith("."):
            hits.append(0)
        if not hits:
            return True
        row_start = text.rfind("\n", 0, min(hits) + 1) + 1
        row_end = text.find("\n", row_start)
        row_end = len(text) if row_end < 0 else row_end
        path = text[row_start:row_end].partition(",")[0]
        if not _CLIMBING_PATH.fullmatch(path) or "/." in path.lstrip("./"):
            return False
        _check_path(path, record_path, climb_limit)
        start = row_end


def is_metadata_dir(name: str) -> bool:
    return name.endswith((".dist-info", ".egg-info"))


def load_distributions(source: Source) -> list[Distribution]:
    """Every ``*.dist-info`` and ``*.egg-info`` directory at the top of the source."""
    root = source.dirs.get("", None)
    if root is None:
        return []
    climb_limit = source.climb_limit()  # the same for every RECORD: worked out once
    loaded: list[Distribution] = []
    rows = 0
    directories: set[str] = set()
    characters = 0
    with gc_paused():
        for name in root.subdirs:
            if not is_metadata_dir(name):
                continue
            dist = _load(source, name, climb_limit)
            rows += dist.record.line_count if dist.record is not None else 0
            if rows > MAX_TOTAL_RECORD_ROWS:
                raise BadInputError(f"the RECORDs of this tree list over {MAX_TOTAL_RECORD_ROWS} rows in all, "
                                    "more than ns-strip reads; not read", dist.record_path or name)
            if dist.record is not None and dist.record.is_parsed:
                # A plain RECORD is counted when (and if) its rows are parsed, on its own.
                characters = _count_directories(dist.files, dist.record_path, directories, characters)
            loaded.append(dist)
    return loaded


def _count_directories(paths: Iterable[str], record_path: str | None, seen: set[str], characters: int) -> int:
    """Add the directories ``paths`` name to ``seen``; refuse past MAX_DIRECTORY_CHARS.

    Stops as soon as the budget is spent, so a hostile RECORD costs at most the budget.
    """
    for path in paths:
        directory = path.rpartition("/")[0]
        while directory and directory not in seen:
            seen.add(directory)
            characters += len(directory)
            if characters > MAX_DIRECTORY_CHARS:
                raise BadInputError(
                    f"the RECORDs of this tree name over {MAX_DIRECTORY_CHARS} characters of distinct directories "
                    "(paths nested too deep, or too many of them); not read", record_path)
            directory = directory.rpartition("/")[0]
    return characters


def _load(source: Source, metadata_dir: str, climb_limit: int) -> Distribution:
    listing = source.dirs.get(metadata_dir)
    names = set(listing.files) if listing else set()
    egg_info = metadata_dir.endswith(".egg-info")
    name, version = _name_and_version(source, metadata_dir, "PKG-INFO" if egg_info else "METADATA", names)

    record_name = "installed-files.txt" if egg_info else "RECORD"
    record_path = join(metadata_dir, record_name) if record_name in names else None
    record = None
    if record_path is not None:
        data = source.read_bytes(record_path, limit=MAX_RECORD_BYTES)
        if egg_info:
            record = Record(record_path, lines=_parse_installed_files(data, record_path, metadata_dir, climb_limit))
        else:
            record = read_record(data, record_path, climb_limit)

    declared = None
    if NAMESPACE_PACKAGES_TXT in names:
        declared = read_name_list(source, join(metadata_dir, NAMESPACE_PACKAGES_TXT))
    return Distribution(name, version, metadata_dir, record_path, record, declared)


def read_record(data: bytes, record_path: str, climb_limit: int) -> Record:
    """A RECORD's rows: kept as text when plain (parsed when first needed), else parsed now."""
    # One pass tells both whether the bytes may be plain and whether "\n" alone ends lines.
    clean = data.isascii() and len(data.translate(None, _NOT_PLAIN_BYTES)) == len(data)
    text = _decode_record(data, record_path, only_newlines=clean)
    if clean and _is_plain_record(text, record_path, climb_limit):
        return Record(record_path, text=text, climb_limit=climb_limit)
    return Record(record_path, lines=_parse_record_text(text, record_path, climb_limit))


def read_name_list(source: Source, path: str) -> list[str]:
    """The names in ``namespace_packages.txt`` or ``top_level.txt``, read bounded
    (MAX_TEXT_BYTES; over it, exit 3 naming the file)."""
    return parse_declared_names(source.read_bytes(path, limit=MAX_TEXT_BYTES))


def parse_declared_names(data: bytes) -> list[str]:
    """The names a ``namespace_packages.txt`` (or ``top_level.txt``) lists, each once, in order.

    A line that is not a dotted Python name (setuptools never writes one) names nothing that
    could be imported, and is skipped; a name repeated 500,000 times is one name.
    """
    text = data.decode("utf-8", errors="replace")
    names: dict[str, None] = {}
    for line in text.splitlines():
        name = line.strip()
        if name and not name.startswith("#") and all(part.isidentifier() for part in name.split(".")):
            names.setdefault(name)
    return list(names)


def _name_and_version(source: Source, metadata_dir: str, filename: str, names: set[str]) -> tuple[str, str]:
    stem = metadata_dir.rsplit(".", 1)[0]
    fallback_name, _, fallback_version = stem.partition("-")
    if filename in names:
        data = source.read_bytes(join(metadata_dir, filename), limit=MAX_METADATA_BYTES)
        simple = _simple_name_and_version(data)
        if simple is not None:
            return simple
        # Imported here: the email parser is only for metadata the shortcut leaves.
        from .coremetadata import read_fields, single

        fields = read_fields(metadata_headers(data))
        name, version = single(fields, "Name"), single(fields, "Version")
        return (fallback_name if name is None else name,
                fallback_version.split("-")[0] if version is None else version)
    return fallback_name, fallback_version.split("-")[0]


def metadata_headers(data: bytes) -> bytes:
    """The header block of a METADATA/PKG-INFO file, without the description body that follows
    the first empty line (it may be megabytes, and the email parser copies it several times)."""
    ends = [end for end in (data.find(b"\n\n"), data.find(b"\r\n\r\n"), data.find(b"\r\r")) if end >= 0]
    return data[: min(ends) + 1] if ends else data


# A header line as the email parser recognises one: printable ASCII name, then a colon.
_HEADER_NAME = re.compile(r"[\041-\071\073-\176]+")


def _simple_name_and_version(data: bytes) -> tuple[str, str] | None:
    """Name and Version from plain metadata headers, as ``coremetadata.read_fields`` reads them.

    Only for the common case: ASCII, ``\\n`` line ends, no folded or repeated headers, no
    mbox ``From`` line, both fields present. Anything else returns None and goes to
    ``read_fields``, which is slower because it parses the whole message.
    """
    # Only the header block is looked at: the description after it may be long, and non-ASCII.
    end = data.find(b"\n\n")
    headers = data if end < 0 else data[:end]
    if b"\r" in headers or not headers.isascii():
        return None
    found: dict[str, str] = {}
    for line in headers.decode("ascii").split("\n"):
        if not line:
            break  # end of the headers
        name, colon, value = line.partition(":")
        if not colon or line.startswith(("From ", " ", "\t")) or not _HEADER_NAME.fullmatch(name):
            return None
        key = name.lower()
        if key in ("name", "version"):
            if key in found:
                return None
            found[key] = value.lstrip(" \t")
    if len(found) != 2:
        return None
    return found["name"], found["version"]


def _check_path(path: str, record_path: str, climb_limit: int) -> str:
    """Refuse paths that are absolute or climb out of the root: nothing may be done to them."""
    if path.startswith(("/", "\\")) or (len(path) > 2 and path[1] == ":" and path[2] in "/\\"):
        raise BadInputError(f"absolute path in RECORD entry {path!r}; refusing to touch this tree", record_path)
    normalised = normalise_record_path(path)
    climbs = 0
    for part in normalised.split("/"):
        if part != "..":
            break
        climbs += 1
    if climbs > climb_limit:
        raise BadInputError(f"RECORD entry {path!r} points outside the root; refusing to touch this tree", record_path)
    if normalised.partition("/")[0] == JOURNAL_DIR:
        raise ShippedJournalError(f"RECORD entry {path!r}", record_path)
    return normalised


# Every row costs about 150 bytes of memory however short it is: a RECORD of 16 million
# one-letter rows (64 MiB) would take 2.4 GB. The largest real distributions list tens of
# thousands of files.
MAX_RECORD_ROWS = 500_000
# And in all: a distro-sized tree (5,000 distributions) lists about 200,000 files.
MAX_TOTAL_RECORD_ROWS = 2_000_000
# Owners and import names are worked out per directory, and each directory a row names is kept
# as a string: a row D levels deep and L characters long names directories of about D*L/2
# characters. A RECORD of 8,000 distinct rows 1,000 levels deep (16 MB) would make 16 GB of
# them. Real trees share their directories: a distro-sized one names about 30,000 (1-2 million
# characters in all).
MAX_DIRECTORY_CHARS = 16_000_000
# What str.splitlines() ends a line at, as UTF-8 bytes (\r\n is one end; counted below).
_SINGLE_BYTE_BREAKS = b"\r\x0b\x0c\x1c\x1d\x1e"  # besides "\n"
_LINE_BREAKS = (b"\n", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8",
                b"\xe2\x80\xa9")


def _split_lines(data: bytes, record_path: str) -> list[str]:
    return _decode_record(data, record_path).splitlines(keepends=True)


def _decode_record(data: bytes, record_path: str, only_newlines: bool = False) -> str:
    """``data`` decoded, refused past MAX_RECORD_ROWS lines; ``only_newlines``: the caller
    knows that no other line end is in it."""
    # Counted before decoding, so that a refused file never costs the memory it would take.
    if only_newlines or (data.isascii() and len(data.translate(None, _SINGLE_BYTE_BREAKS)) == len(data)):
        rows = data.count(b"\n")  # the common case: only "\n" ends a line
    else:
        rows = sum(data.count(end) for end in _LINE_BREAKS) - data.count(b"\r\n")
    if rows > MAX_RECORD_ROWS:
        raise BadInputError(f"has {rows} lines, over the limit of {MAX_RECORD_ROWS} rows; not read", record_path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not UTF-8 ({exc.reason} at byte {exc.start})", record_path) from exc
    return text


_HASH_NAMES = frozenset(hashlib.algorithms_available)


def _plain_record_path(line: str) -> str | None:
    """The path of an unquoted, well-formed RECORD row, or None to let installer's parser decide.

    A distro-sized tree has hundreds of thousands of rows and nearly all are plain
    ``path,sha256=…,size``; this reads them exactly as installer's parser would, without a
    csv reader per line. Anything unusual (quotes, NULs, a missing or bad column) returns None.
    """
    body = line[:-2] if line.endswith("\r\n") else line[:-1] if line.endswith(("\n", "\r")) else line
    if '"' in body or "\x00" in body or "\r" in body or "\n" in body:
        return None
    fields = body.split(",")
    if len(fields) != 3 or not fields[0]:
        return None
    _, hash_, size = fields
    if hash_:
        name, equals, _ = hash_.partition("=")
        if not equals or name not in _HASH_NAMES:
            return None
    if size and not (size.isascii() and size.isdigit()):
        return None  # int() accepts more ('+1', ' 1', '1_0', other digits): installer's parser decides
    return fields[0].replace("\\", "/")


def _normalised_path(path: str, record_path: str, climb_limit: int) -> str:
    # A plain relative path is its own normal form: skip normpath for it.
    if "/." in path or "//" in path or path.startswith((".", "/", "\\")) or path.endswith("/") or ":" in path:
        return _check_path(path, record_path, climb_limit)
    return path


def _parse_record(data: bytes, record_path: str, climb_limit: int) -> list[RecordLine]:
    return _parse_record_text(_decode_record(data, record_path), record_path, climb_limit)


def _parse_record_text(text: str, record_path: str, climb_limit: int) -> list[RecordLine]:
    result = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not line.strip():
            result.append(RecordLine(line, None))
            continue
        path = _plain_record_path(line)
        if path is None:
            path = _parsed_record_path(line, number, record_path)
        result.append(RecordLine(line, _normalised_path(path, record_path, climb_limit)))
    return result


def _parsed_record_path(line: str, number: int, record_path: str) -> str:
    """The path of one RECORD row read by installer's parser, which validates every column."""
    # Imported here: only rows the shortcut leaves need it, and a build root runs many commands.
    from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file

    try:
        rows = list(parse_record_file([line]))
        for row in rows:
            RecordEntry.from_elements(*row)  # validates the hash and size columns
    except (InvalidRecordEntry, ValueError, csv.Error) as exc:
        # csv.Error: a quoted field over the csv module's field limit (128 KiB), among others.
        message = getattr(exc, "issues", None) or str(exc)
        raise BadInputError(f"line {number} is not a valid RECORD row: {message}", record_path) from exc
    if len(rows) != 1:
        raise BadInputError(f"line {number} is not a valid RECORD row", record_path)
    # installer 0.7 and later turn Windows separators into "/" themselves; 0.6 (Debian 12) does not.
    return rows[0][0].replace("\\", "/")


def _parse_installed_files(data: bytes, record_path: str, metadata_dir: str, climb_limit: int) -> list[RecordLine]:
    result = []
    for line in _split_lines(data, record_path):
        entry = line.strip()
        if not entry:
            result.append(RecordLine(line, None))
            continue
        # Entries are relative to the egg-info directory itself.
        checked = _check_path(posixpath.join(metadata_dir, entry), record_path, climb_limit)
        result.append(RecordLine(line, checked))
    return result


class Owners:
    """Who lists a path, answered without parsing every row (see :class:`Record`).

    The distributions are indexed by the first component of the paths their rows name, so a
    question about ``zope/__init__.py`` looks only at the RECORDs that list something under
    ``zope``, and in each of those for the row itself.
    """

    def __init__(self, distributions: Iterable[Distribution]) -> None:
        self._distributions = [dist for dist in distributions if dist.record is not None]
        self._by_top: dict[str, list[Distribution]] | None = None

    def _candidates(self, path: str) -> list[Distribution]:
        if self._by_top is None:
            by_top: dict[str, list[Distribution]] = defaultdict(list)
            for dist in self._distributions:
                assert dist.record is not None
                for top in dist.record.top_names():
                    by_top[top].append(dist)
            self._by_top = by_top
        return self._by_top.get(path.partition("/")[0], [])

    def of_path(self, path: str) -> list[str]:
        """Names of the distributions whose RECORD lists ``path``, in the order they were loaded."""
        return [dist.name for dist in self._candidates(path) if dist.lists(path)]

    def of_directory(self, directory: str) -> list[str]:
        """Names of the distributions that list a file somewhere below ``directory``, sorted."""
        return sorted({dist.name for dist in self._candidates(directory) if dist.lists_below(directory)})

    def distributions_of(self, paths: Iterable[str]) -> list[Distribution]:
        """The distributions whose RECORD lists any of ``paths``, in the order they were loaded."""
        wanted = list(paths)
        found = {id(dist) for path in wanted for dist in self._candidates(path) if dist.lists(path)}
        return [dist for dist in self._distributions if id(dist) in found]


def owners_by_path(distributions: Iterable[Distribution]) -> dict[str, list[str]]:
    """path -> names of the distributions whose RECORD lists it."""
    owners: dict[str, list[str]] = defaultdict(list)
    for dist in distributions:
        for path in dist.files:
            owners[path].append(dist.name)
    return owners
