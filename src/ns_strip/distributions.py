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
import dataclasses
import functools
import hashlib
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable

from .coremetadata import read_fields, single
from .errors import BadInputError, ShippedJournalError
from .journal import JOURNAL_DIR
from .safeio import MAX_METADATA_BYTES, MAX_RECORD_BYTES, MAX_TEXT_BYTES
from .sources import Source, gc_paused, join, normalise_record_path

NAMESPACE_PACKAGES_TXT = "namespace_packages.txt"


@dataclasses.dataclass
class RecordLine:
    """One line of a RECORD or installed-files.txt, kept as written so rewrites change nothing else."""

    __slots__ = ("text", "path")  # one per installed file: a distro-sized tree has 200,000

    text: str  # the raw line with its line ending
    path: str | None  # normalised relative to the source root; None for a blank line


@dataclasses.dataclass
class Distribution:
    name: str
    version: str
    metadata_dir: str  # relative to the source root
    record_path: str | None  # RECORD (dist-info) or installed-files.txt (egg-info)
    record_lines: list[RecordLine]
    declared_namespaces: list[str] | None  # None: no namespace_packages.txt

    @functools.cached_property
    def files(self) -> list[str]:
        # Asked for many times per scan (owners, declarations, NS401); the lines never change
        # after loading: a rewrite produces new bytes, not new lines.
        return [line.path for line in self.record_lines if line.path is not None]

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
            "files": len(self.files),
        }


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
            rows += len(dist.record_lines)
            if rows > MAX_TOTAL_RECORD_ROWS:
                raise BadInputError(f"the RECORDs of this tree list over {MAX_TOTAL_RECORD_ROWS} rows in all, "
                                    "more than ns-strip reads; not read", dist.record_path or name)
            characters = _count_directories(dist, directories, characters)
            loaded.append(dist)
    return loaded


def _count_directories(dist: Distribution, seen: set[str], characters: int) -> int:
    """Add the directories ``dist``'s rows name to ``seen``; refuse past MAX_DIRECTORY_CHARS.

    Stops as soon as the budget is spent, so a hostile RECORD costs at most the budget.
    """
    for path in dist.files:
        directory = path.rpartition("/")[0]
        while directory and directory not in seen:
            seen.add(directory)
            characters += len(directory)
            if characters > MAX_DIRECTORY_CHARS:
                raise BadInputError(
                    f"the RECORDs of this tree name over {MAX_DIRECTORY_CHARS} characters of distinct directories "
                    "(paths nested too deep, or too many of them); not read", dist.record_path)
            directory = directory.rpartition("/")[0]
    return characters


def _load(source: Source, metadata_dir: str, climb_limit: int) -> Distribution:
    listing = source.dirs.get(metadata_dir)
    names = set(listing.files) if listing else set()
    egg_info = metadata_dir.endswith(".egg-info")
    name, version = _name_and_version(source, metadata_dir, "PKG-INFO" if egg_info else "METADATA", names)

    record_name = "installed-files.txt" if egg_info else "RECORD"
    record_path = join(metadata_dir, record_name) if record_name in names else None
    lines: list[RecordLine] = []
    if record_path is not None:
        data = source.read_bytes(record_path, limit=MAX_RECORD_BYTES)
        if egg_info:
            lines = _parse_installed_files(data, record_path, metadata_dir, climb_limit)
        else:
            lines = _parse_record(data, record_path, climb_limit)

    declared = None
    if NAMESPACE_PACKAGES_TXT in names:
        declared = read_name_list(source, join(metadata_dir, NAMESPACE_PACKAGES_TXT))
    return Distribution(name, version, metadata_dir, record_path, lines, declared)


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
        fields = read_fields(metadata_headers(data))  # only for metadata the shortcut leaves
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
    if b"\r" in data or not data.isascii():
        return None
    found: dict[str, str] = {}
    for line in data.decode("ascii").split("\n"):
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
_LINE_BREAKS = (b"\n", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8",
                b"\xe2\x80\xa9")


def _split_lines(data: bytes, record_path: str) -> list[str]:
    # Counted before splitting, so that a refused file never costs the memory it would take.
    rows = sum(data.count(end) for end in _LINE_BREAKS) - data.count(b"\r\n")
    if rows > MAX_RECORD_ROWS:
        raise BadInputError(f"has {rows} lines, over the limit of {MAX_RECORD_ROWS} rows; not read", record_path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not UTF-8 ({exc.reason} at byte {exc.start})", record_path) from exc
    return text.splitlines(keepends=True)


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
    result = []
    for number, line in enumerate(_split_lines(data, record_path), start=1):
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


def owners_by_path(distributions: Iterable[Distribution]) -> dict[str, list[str]]:
    """path -> names of the distributions whose RECORD lists it."""
    owners: dict[str, list[str]] = defaultdict(list)
    for dist in distributions:
        for path in dist.files:
            owners[path].append(dist.name)
    return owners


def owners_by_directory(distributions: Iterable[Distribution]) -> dict[str, list[str]]:
    """directory -> names of the distributions that list a file somewhere below it."""
    owners: dict[str, set[str]] = defaultdict(set)
    for dist in distributions:
        seen: set[str] = set()
        for path in dist.files:
            directory = path.rpartition("/")[0]
            while directory and directory not in seen:
                seen.add(directory)
                owners[directory].add(dist.name)
                directory = directory.rpartition("/")[0]
    return {directory: sorted(names) for directory, names in owners.items()}
