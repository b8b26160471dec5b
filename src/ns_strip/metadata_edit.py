"""Small, exact edits of core metadata and RECORD: everything not edited stays byte for byte.

METADATA is an email-style header block followed by an optional body (the long description).
Edits work on the header lines as written, so a rewrite changes only the fields it means to:
no re-wrapping, no re-ordering, no change of line endings. RECORD rows are rewritten the same
way: removed rows go, replaced files get a new ``sha256`` and size, every other row is kept as
written.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from .distributions import RecordLine
from .errors import BadInputError


def record_hash(data: bytes) -> str:
    """The RECORD hash column for ``data`` (sha256, urlsafe base64 without padding)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def line_ending(text: str) -> str:
    for ending in ("\r\n", "\n", "\r"):
        if text.endswith(ending):
            return ending
    return ""


def csv_row(fields: Sequence[str], ending: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=",", quotechar='"', lineterminator=ending or "\n").writerow(fields)
    return buffer.getvalue() if ending else buffer.getvalue().rstrip("\n")


def record_row_path(line: RecordLine) -> str:
    """The path column of a RECORD row exactly as written (not normalised)."""
    # installer (about 35 ms of imports) only when a row is rewritten: a strip that finds
    # nothing to strip, the common package build, never needs it.
    from installer.records import parse_record_file

    return next(parse_record_file([line.text.rstrip("\r\n")]))[0]


def rewrite_record(
    lines: Iterable[RecordLine],
    removed: Collection[str],
    replaced: Mapping[str, bytes],
    renamed: Mapping[str, str] | None = None,
) -> bytes:
    """A RECORD without the rows of ``removed``, with new hash and size for ``replaced`` and a
    new path (hash and size kept) for ``renamed``; every other row exactly as written.

    Keys are the normalised paths of ``RecordLine.path``; a replaced row keeps its path column
    as written. The RECORD row itself has no hash and is never in ``replaced``.
    """
    out = []
    for line in lines:
        if line.path in removed:
            continue
        if line.path is not None and line.path in replaced:
            data = replaced[line.path]
            ending = line_ending(line.text)
            out.append(csv_row([record_row_path(line), record_hash(data), str(len(data))], ending))
        elif renamed and line.path in renamed:
            from installer.records import parse_record_file

            _, hash_, size = next(parse_record_file([line.text.rstrip("\r\n")]))
            out.append(csv_row([renamed[line.path], hash_, size], line_ending(line.text)))
        else:
            out.append(line.text)
    return "".join(out).encode("utf-8")


# -- METADATA --------------------------------------------------------------------------------


@dataclasses.dataclass
class _Header:
    name: str  # as written, e.g. "Requires-Dist"
    value: str  # the first line's value, stripped
    text: str  # the whole field: first line and continuation lines, with their endings


@dataclasses.dataclass
class MetadataDocument:
    """A METADATA file split into header fields and the rest (blank line and body)."""

    headers: list[_Header]
    rest: str
    ending: str  # the line ending the file uses, for fields this module writes

    @classmethod
    def parse(cls, data: bytes, label: str) -> MetadataDocument:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInputError(f"METADATA is not UTF-8 ({exc.reason} at byte {exc.start})", label) from exc
        lines = text.splitlines(keepends=True)
        headers: list[_Header] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            if not line.strip():
                break  # the blank line that starts the body
            if line[0] in " \t" and headers:
                headers[-1].text += line  # a folded continuation of the previous field
            else:
                name, colon, value = line.partition(":")
                if not colon:
                    raise BadInputError(f"line {index + 1} of METADATA is not a 'Name: value' field", label)
                headers.append(_Header(name.strip(), value.strip(), line))
            index += 1
        ending = line_ending(lines[0]) if lines else "\n"
        return cls(headers, "".join(lines[index:]), ending or "\n")

    def values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [header.value for header in self.headers if header.name.lower() == wanted]

    def remove(self, predicate: Callable[[_Header], bool]) -> int:
        before = len(self.headers)
        self.headers = [header for header in self.headers if not predicate(header)]
        return before - len(self.headers)

    def add(self, name: str, value: str) -> None:
        """Append a field at the end of the header block (after every other field)."""
        if self.headers and not line_ending(self.headers[-1].text):
            self.headers[-1].text += self.ending
        self.headers.append(_Header(name, value, f"{name}: {value}{self.ending}" if value else f"{name}:{self.ending}"))

    def require_version(self, minimum: str) -> None:
        """Raise Metadata-Version to ``minimum`` when it is lower (fields of that version are added)."""
        # packaging is imported where it is used: every strip and wheel rewrite imports this
        # module for RECORD, and packaging's parsers cost about 25 ms of start-up.
        from packaging.version import InvalidVersion, Version

        for header in self.headers:
            if header.name.lower() != "metadata-version":
                continue
            try:
                if Version(header.value) >= Version(minimum):
                    return
            except InvalidVersion:
                pass  # an unreadable version is replaced by one that says what the file holds
            header.value = minimum
            header.text = f"{header.name}: {minimum}{line_ending(header.text) or self.ending}"
            return
        self.headers.insert(0, _Header("Metadata-Version", minimum, f"Metadata-Version: {minimum}{self.ending}"))

    def to_bytes(self) -> bytes:
        return ("".join(header.text for header in self.headers) + self.rest).encode("utf-8")


def is_requirement_on(value: str, project: str) -> bool:
    """Whether a Requires-Dist value names ``project`` unconditionally of extras."""
    # Imported here, as in require_version.
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(value)
    except InvalidRequirement:
        return False
    if canonicalize_name(requirement.name) != canonicalize_name(project):
        return False
    # A requirement of an extra is not a runtime dependency of the plain install.
    return requirement.marker is None or "extra" not in str(requirement.marker)


def set_import_fields(data: bytes, label: str, names: Sequence[str], namespaces: Sequence[str]) -> bytes:
    """METADATA with exactly these Import-Name / Import-Namespace fields (Metadata-Version 2.5).

    An empty ``names`` is written as one empty ``Import-Name:`` field: PEP 794 reads that as
    "this distribution provides no import names", while a missing field means "not said".
    """
    document = MetadataDocument.parse(data, label)
    document.remove(lambda h: h.name.lower() in ("import-name", "import-namespace"))
    document.require_version("2.5")
    for name in names or [""]:
        document.add("Import-Name", name)
    for namespace in namespaces:
        document.add("Import-Namespace", namespace)
    return document.to_bytes()


def drop_requirement(data: bytes, label: str, project: str) -> tuple[bytes, list[str]]:
    """METADATA without the runtime ``Requires-Dist`` fields on ``project``, and those dropped."""
    document = MetadataDocument.parse(data, label)
    dropped = [
        header.value for header in document.headers
        if header.name.lower() == "requires-dist" and is_requirement_on(header.value, project)
    ]
    document.remove(lambda h: h.name.lower() == "requires-dist" and is_requirement_on(h.value, project))
    return document.to_bytes(), dropped
