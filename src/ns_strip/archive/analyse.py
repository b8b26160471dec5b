"""The task function: one artifact in, one plain record out (what the index stores about it).

:func:`analyse_path` is what every engine runs (a few at a time, :func:`analyse_batch`), in a
local worker process or on a Dask worker: it takes a path and returns a dict of plain values
(picklable: the artifact's columns, and its child rows ready to insert, ``rows``, see
``rows.child_rows``), never raises for a bad artifact, and writes nothing. Everything that can
be done per artifact is done here, in parallel, so that the coordinator only inserts. The
analyses are the ones the single-artifact commands use: ``scan`` (namespaces, their style and
purity, the legacy files strip would remove, findings), ``ext`` (extension modules, init
exports, tags, NS201-NS205, NS202 takeovers), ``import-names`` (computed and declared
Import-Name / Import-Namespace, NS402/NS404), and the ``.pth`` audit.

A hostile or broken artifact (one the wheel commands refuse, a bad tar stream, a bomb) comes
back with ``status: "refused"`` and the one-line reason; so does an artifact that makes an
analysis fail unexpectedly, with the exception named, so one bad file never stops a run.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from ..errors import BadInputError
from ..extensions import check_extension, is_shared_library, namespace_takeovers
from ..extsources import read_source
from ..importnames import compute_layout, layout_findings
from ..scan import scan
from ..sources import Source
from .artifacts import artifact_kind, open_artifact
from .members import MemberSource
from ..pthaudit import audit_source
from .pth import audit_pth
from .rows import child_rows, storable_record

RECORD_FORMAT = 2  # 2: child rows made in the worker (``rows``)

# What a worker process needs to analyse artifacts: this module, and what its analyses import
# on the first artifact. The local engine's fork server imports them once, before it forks the
# workers, so that no worker spends its first task importing.
WORKER_MODULES = ("ns_strip.archive.analyse", "ns_strip.wheels.source", "installer.records", "packaging.tags",
                  "packaging.utils", "packaging.version")


def file_sha256(path: str) -> tuple[str, int, int]:
    """The file's sha256 (hex), size and modification time (ns), read in chunks."""
    hasher = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInputError("not a regular file", path)
        while chunk := os.read(fd, 1 << 20):
            hasher.update(chunk)
    finally:
        os.close(fd)
    return hasher.hexdigest(), info.st_size, info.st_mtime_ns


def analyse_path(path: str) -> dict[str, Any]:
    """Analyse the artifact at ``path`` (see the module docstring)."""
    name = os.path.basename(path)
    kind = artifact_kind(name)
    record: dict[str, Any] = {"format": RECORD_FORMAT, "path": path, "filename": name, "kind": kind}
    try:
        digest, size, mtime = file_sha256(path)
    except (OSError, BadInputError) as exc:
        reason = exc.message if isinstance(exc, BadInputError) else f"cannot read: {exc.strerror or exc}"
        record.update(status="unreadable", reason=reason, sha256=None, size=None, mtime_ns=None)
        return storable_record(record)
    record.update(sha256=digest, size=size, mtime_ns=mtime)
    try:
        if kind is None:
            raise BadInputError("not a wheel, an sdist or a .deb", path)
        with open_artifact(path, kind, name) as opened:
            record["rows"] = child_rows(analyse_source(opened.source))
            record["package"] = opened.package
            record["package_version"] = opened.package_version
        record["status"] = "indexed"
    except BadInputError as exc:
        record.update(status="refused", reason=str(exc))
    except RecursionError:
        record.update(status="refused", reason=f"{name}: nested too deeply to analyse")
    except MemoryError:
        record.update(status="refused", reason=f"{name}: ran out of memory while analysing it")
    except Exception as exc:  # noqa: BLE001 - one artifact must never stop an archive's run
        record.update(status="refused", reason=f"{name}: analysis failed ({type(exc).__name__}: {exc})")
    if record["status"] == "refused":
        record["rows"] = {}
    try:
        after = os.stat(path)
        if (after.st_size, after.st_mtime_ns) != (size, mtime):
            record.update(status="unreadable", reason=f"{name}: changed while it was being indexed")
    except OSError as exc:
        record.update(status="unreadable", reason=f"{name}: gone while it was being indexed ({exc.strerror})")
    return storable_record(record)


def analyse_batch(paths: list[str]) -> list[dict[str, Any]]:
    """:func:`analyse_path` for several artifacts: one task for a few small artifacts costs an
    engine's scheduling and messaging once instead of for each."""
    return [analyse_path(path) for path in paths]


def analyse_source(source: Source) -> dict[str, Any]:
    """Everything the index keeps about one artifact, read through its ``Source``."""
    result = scan(source)
    findings = list(result.findings)
    distributions = []
    files: list[list[Any]] = []
    for dist in result.distributions:
        layout = compute_layout(source, dist)
        findings += layout_findings(layout)
        distributions.append(dict(layout.to_json(), import_name_kinds={e.name: e.kind for e in layout.names}))
        files += [[path, size, hash_, dist.name] for path, hash_, size in _record_rows(source, dist)]
    tree = read_source(source)
    extensions = [info for info in tree.extensions if not is_shared_library(info)]
    for info in extensions:
        findings += check_extension(info)
    findings += namespace_takeovers(extensions, tree.namespaces)
    pth = audit_pth(source)
    findings += audit_source(source)
    return {
        "distributions": distributions,
        "files": files,
        "namespaces": [entry.to_json() for entry in result.namespaces],
        "legacy": [{"path": c.path, "kind": c.kind, "description": c.description} for c in result.candidates],
        "extensions": [dict(info.to_json(), distributions=list(info.distributions)) for info in extensions],
        "pth": pth,
        "findings": sorted((f.to_json() for f in findings), key=lambda f: (f["code"], f["path"], f["message"])),
    }


def _record_rows(source: Source, dist) -> list[tuple[str, str | None, int | None]]:  # noqa: ANN001
    """(path, hash, size) of every file a distribution's RECORD lists (installed view)."""
    from installer.records import parse_record_file

    rows: list[tuple[str, str | None, int | None]] = []
    listed_only = dist.record_path is not None and not dist.record_path.endswith("/RECORD")  # installed-files.txt
    held = source.files if isinstance(source, MemberSource) else {}
    for line in dist.record_lines:
        if line.path is None:
            continue
        hash_, size = "", ""
        if not listed_only:
            text = line.text.rstrip("\r\n")
            if '"' in text:
                _, hash_, size = next(parse_record_file([text]))
            else:
                _, hash_, size = (text.rsplit(",", 2) + ["", ""])[:3]
        entry = held.get(line.path)
        if not hash_ and entry is not None and entry.link is None:
            hash_, size = entry.sha256, str(entry.size)
        rows.append((line.path, hash_ or None, int(size) if size.isdigit() else None))
    return rows
