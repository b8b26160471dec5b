"""A wheel's RECORD checked against its members: installer's ``validate_record`` with its
messages (unlisted members, hashes and sizes), plus rows naming no member. Checking hashes means
decompressing and hashing every member, most of the time spent on a large wheel, so members are
read straight from the file in large chunks by as many threads as there are cores (zlib and
hashlib release the GIL), each one checked against its CRC as ``zipfile`` would.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import posixpath
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO

from installer.records import InvalidRecordEntry, RecordEntry, parse_record_file
from installer.sources import WheelFile
from packaging.utils import canonicalize_name

from ..errors import BadInputError, ShippedJournalError
from .archive import CHUNK, SIGNATURE_FILES, Member, check_local_header, installs_into_journal, member_chunks


def validate_layout(wheel_file: WheelFile, names: Sequence[str], label: str) -> tuple[str, str]:
    # installer 0.6 (Debian 12) checks the .dist-info directory with assert statements, which
    # ``python -O`` drops: the two checks are made here first, with installer's messages.
    dist_infos = {name.split("/", 1)[0] for name in names}
    dist_infos = {name for name in dist_infos if name.endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise BadInputError("Wheel doesn't contain exactly one .dist-info directory", label)
    if canonicalize_name(next(iter(dist_infos)).rsplit("-", 2)[0]) != canonicalize_name(wheel_file.distribution):
        raise BadInputError("Wheel .dist-info directory doesn't match wheel filename", label)
    try:
        dist_info_dir = wheel_file.dist_info_dir
    except (ValueError, AssertionError) as exc:
        raise BadInputError(getattr(exc, "reason", str(exc)), label) from exc
    return dist_info_dir, wheel_file.data_dir


# What a member's check found when it matched RECORD: the directory's method, CRC and sizes
# and the RECORD row's hash and size fields, as written. Another archive holding the same
# member with the same values and the same row holds the same checked content.
Verified = tuple[int, int, int, int, str, str]

# Below this many compressed bytes in all, threads would cost more than they save.
_PARALLEL_MIN = 4 << 20


def validate_record(wheel_file: WheelFile, archive: zipfile.ZipFile, handle: BinaryIO,
                    members: Mapping[str, Member], read_record: Callable[[], str], label: str,
                    verified: Mapping[str, Verified]) -> dict[str, Verified]:
    """Check RECORD (its text from ``read_record``) against the members; the members whose
    content matched it."""
    issues, checked, unmatched = _record_issues(wheel_file, archive, handle, members, read_record, verified)
    for path in unmatched:
        if installs_into_journal(path.replace("\\", "/").lstrip("/")):
            raise ShippedJournalError(f"RECORD row {path!r}", label)
    if issues:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise BadInputError(f"RECORD does not match the archive: {issues[0]}{more}", label)
    # Rows that named no file member, in RECORD order (a directory member's row is harmless).
    for path in unmatched:
        if path not in members:
            raise BadInputError(f"RECORD lists {path!r}, which is not in the archive", label)
    return checked


def _record_issues(wheel_file: WheelFile, archive: zipfile.ZipFile, handle: BinaryIO,
                   members: Mapping[str, Member], read_record: Callable[[], str], verified: Mapping[str, Verified]
                   ) -> tuple[list[str], dict[str, Verified], list[str]]:
    """installer's ``WheelFile.validate_record(validate_contents=True)``, with its messages (less
    its "In WHEEL, " prefix) and its order: the issues of each member in archive order, and a
    damaged member raising as it would there. Only reading the contents is done differently:
    all at once, in threads, before the issues are put in order. Also returns the members that
    matched and the paths of RECORD rows that named no file member."""
    try:
        record_lines = read_record().splitlines()
        record_mapping = {record[0]: record for record in parse_record_file(record_lines)}
    except BadInputError:
        raise  # a RECORD too large to read, or a bomb: refused as such
    except Exception as exc:  # noqa: BLE001  (installer reports any failure here as this issue)
        return [f"Unable to retrieve `RECORD` from {archive.filename}: {exc!r}"], {}, []
    dist_info_dir = wheel_file.dist_info_dir
    # In archive order: an issue, or a content check (its index in ``checks``).
    steps: list[str | int] = []
    checks: list[tuple[Member, RecordEntry, Verified]] = []
    for item in archive.infolist():
        if item.filename[-1:] == "/":
            continue
        record_args = record_mapping.pop(item.filename, None)
        # installer's test, its cheap half first (commonpath is slow, and run for every member).
        if item.filename.rpartition("/")[2] in SIGNATURE_FILES \
                and dist_info_dir == posixpath.commonpath([dist_info_dir, item.filename]):
            if record_args is not None:
                steps.append(f"digital signature file {item.filename} is incorrectly contained in RECORD.")
            continue
        if record_args is None:
            steps.append(f"{item.filename} is not mentioned in RECORD")
            continue
        try:
            record = RecordEntry.from_elements(*record_args)
        except InvalidRecordEntry as exc:
            steps.extend(f"entry in RECORD file for {item.filename} is invalid: {issue}" for issue in exc.issues)
            continue
        if item.filename == f"{dist_info_dir}/RECORD":
            if record.hash_ is not None or record.size is not None:
                steps.append("RECORD file incorrectly contains hash / size.")
            continue
        if record.hash_ is None or record.size is None:
            steps.append(f"hash / size of {item.filename} is not included in RECORD")
        steps.append(len(checks))
        member = members[item.filename]
        checks.append((member, record, _verified_key(member.info, (record_args[1], record_args[2]))))

    results = _check_contents(archive, handle, checks, verified)
    issues: list[str] = []
    checked: dict[str, Verified] = {}
    for step in steps:
        if isinstance(step, str):
            issues.append(step)
            continue
        result = results[step]
        if isinstance(result, Exception):
            raise result  # the first damaged member in archive order, as installer meets it
        assert result is not None, "every member is checked"
        member, record, key = checks[step]
        if not result:
            issues.append(f"hash / size of {member.name} didn't match RECORD")
        elif record.hash_ is not None and record.size is not None:
            checked[member.name] = key
    return issues, checked, list(record_mapping)


def _verified_key(info: zipfile.ZipInfo, fields: tuple[str, str]) -> Verified:
    return (info.compress_type, info.CRC, info.compress_size, info.file_size, *fields)


def parse_record_row(line: str) -> tuple[str, str, str]:
    """``next(parse_record_file([line]))``. A row without a quote character is what csv makes
    of it split at the commas, so it is split directly: a csv reader for each row costs about
    2 µs, 9 ms for a RECORD of 5,000 rows, against 1.4 ms."""
    if '"' not in line and len(line) <= csv.field_size_limit():  # csv refuses a longer field
        elements = line.split(",")
        if len(elements) == 3:
            return elements[0].replace("\\", "/"), elements[1], elements[2]
    return next(parse_record_file([line]))


def _check_contents(archive: zipfile.ZipFile, handle: BinaryIO,
                    checks: Sequence[tuple[Member, RecordEntry, Verified]],
                    verified: Mapping[str, Verified]) -> list[bool | Exception | None]:
    """Whether each member's content matches its RECORD entry (or what reading it raised)."""
    results: list[bool | Exception | None] = [None] * len(checks)
    fd = handle.fileno()

    def run(index: int, buffer: memoryview) -> None:
        member, record, key = checks[index]
        try:
            check_local_header(member)
            if verified.get(member.name) == key:
                results[index] = True
            else:
                results[index] = _matches(record, *_hash_member(fd, member, record, buffer))
        except Exception as exc:  # noqa: BLE001  (raised in archive order by the caller, whatever it is)
            results[index] = exc

    fast = list(range(len(checks)))  # every method: zlib, bz2, lzma and hashlib release the GIL
    # Largest first, so that the threads finish together.
    fast.sort(key=lambda i: checks[i][0].info.compress_size, reverse=True)
    to_read = sum(checks[i][0].info.compress_size for i in fast if verified.get(checks[i][0].name) != checks[i][2])
    workers = min(_cpu_count(), len(fast)) if to_read >= _PARALLEL_MIN else 1
    largest = checks[fast[0]][0].info.compress_size if fast else 0
    queue = iter(fast)
    lock = threading.Lock()

    def work() -> None:
        buffer = memoryview(bytearray(min(CHUNK, max(largest, 1))))
        while True:
            with lock:
                index = next(queue, None)
            if index is None:
                return
            run(index, buffer)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    for thread in threads:
        thread.start()
    work()
    for thread in threads:
        thread.join()
    return results


def _cpu_count() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1



def _matches(record: RecordEntry, digest: str | None, size: int) -> bool:
    """``RecordEntry.validate_stream``'s verdict from the digest and size of the content."""
    if record.hash_ is not None:
        if record.size is not None and size != record.size:
            return False
        return record.hash_.value == digest
    if record.size is not None:
        return size == record.size
    return True


def _new_hasher(record: RecordEntry):
    return hashlib.new(record.hash_.name) if record.hash_ is not None else None


def _digest(hasher) -> str | None:
    """The digest as RECORD writes it (urlsafe base64 without padding)."""
    if hasher is None:
        return None
    return base64.urlsafe_b64encode(hasher.digest()).decode("ascii").rstrip("=")


def _hash_member(fd: int, member: Member, record: RecordEntry, buffer: memoryview) -> tuple[str | None, int]:
    """A member's digest and size, decompressed in bounded chunks (:func:`.archive.member_chunks`)."""
    if record.hash_ is None and record.size is None:
        return None, 0  # installer opens such a member but reads none of it
    hasher = _new_hasher(record)
    size = 0
    for chunk in member_chunks(fd, member, buffer):
        if hasher is not None:
            hasher.update(chunk)
        size += len(chunk)
    return _digest(hasher), size
