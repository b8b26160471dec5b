"""The distributions installed in a source: their metadata, the files they list, the
namespaces they declare.

RECORD is parsed with installer's parser and ``installed-files.txt`` (egg-info) line by line;
metadata with packaging's lenient parser, since installed trees hold metadata of every age.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections import defaultdict
from collections.abc import Iterable

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from packaging.metadata import parse_email

from .errors import BadInputError
from .sources import Source, join, normalise_record_path

NAMESPACE_PACKAGES_TXT = "namespace_packages.txt"


@dataclasses.dataclass
class RecordLine:
    """One line of a RECORD or installed-files.txt, kept as written so rewrites change nothing else."""

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

    @property
    def files(self) -> list[str]:
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
    return [_load(source, name) for name in root.subdirs if is_metadata_dir(name)]


def _load(source: Source, metadata_dir: str) -> Distribution:
    listing = source.dirs.get(metadata_dir)
    names = set(listing.files) if listing else set()
    egg_info = metadata_dir.endswith(".egg-info")
    name, version = _name_and_version(source, metadata_dir, "PKG-INFO" if egg_info else "METADATA", names)

    record_name = "installed-files.txt" if egg_info else "RECORD"
    record_path = join(metadata_dir, record_name) if record_name in names else None
    lines: list[RecordLine] = []
    if record_path is not None:
        data = source.read_bytes(record_path)
        if egg_info:
            lines = _parse_installed_files(data, record_path, metadata_dir, source.climb_limit())
        else:
            lines = _parse_record(data, record_path, source.climb_limit())

    declared = None
    if NAMESPACE_PACKAGES_TXT in names:
        text = source.read_bytes(join(metadata_dir, NAMESPACE_PACKAGES_TXT)).decode("utf-8", errors="replace")
        declared = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return Distribution(name, version, metadata_dir, record_path, lines, declared)


def _name_and_version(source: Source, metadata_dir: str, filename: str, names: set[str]) -> tuple[str, str]:
    stem = metadata_dir.rsplit(".", 1)[0]
    fallback_name, _, fallback_version = stem.partition("-")
    if filename in names:
        raw, _ = parse_email(source.read_bytes(join(metadata_dir, filename)))
        return raw.get("name", fallback_name), raw.get("version", fallback_version.split("-")[0])
    return fallback_name, fallback_version.split("-")[0]


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
    return normalised


def _split_lines(data: bytes, record_path: str) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"not UTF-8 ({exc.reason} at byte {exc.start})", record_path) from exc
    return text.splitlines(keepends=True)


def _parse_record(data: bytes, record_path: str, climb_limit: int) -> list[RecordLine]:
    result = []
    for number, line in enumerate(_split_lines(data, record_path), start=1):
        if not line.strip():
            result.append(RecordLine(line, None))
            continue
        try:
            rows = list(parse_record_file([line]))
            for row in rows:
                RecordEntry.from_elements(*row)  # validates the hash and size columns
        except (InvalidRecordEntry, ValueError) as exc:
            message = getattr(exc, "issues", None) or str(exc)
            raise BadInputError(f"line {number} is not a valid RECORD row: {message}", record_path) from exc
        if len(rows) != 1:
            raise BadInputError(f"line {number} is not a valid RECORD row", record_path)
        path = rows[0][0]
        result.append(RecordLine(line, _check_path(path, record_path, climb_limit)))
    return result


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
