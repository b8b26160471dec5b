"""The index: one SQLite file, written by the coordinator only.

Each artifact's record (see ``analyse``) is written in one transaction: its ``artifacts`` row
and all its child rows, or nothing. An artifact is identified by the sha256 of its bytes, so
the same file under two names is one artifact (``artifact_paths`` keeps every name), and an
artifact already indexed is never analysed again: a run that was interrupted loses at most
the artifacts in flight, and running it again completes the index to exactly what an
uninterrupted run gives (:meth:`IndexStore.canonical` is that content, independent of order
and of row ids).

Schema (``SCHEMA_VERSION`` in ``meta``)::

    artifacts(id, sha256 UNIQUE, filename, kind, size, status, reason, package, package_version)
    artifact_paths(path PRIMARY KEY, artifact_id, size, mtime_ns)   -- where each was seen
    distributions(artifact_id, name, project, version, metadata_dir,
                  import_names, import_namespaces, declared_import_names, declared_import_namespaces)
    files(artifact_id, distribution, path, size, hash)
    namespaces(artifact_id, name, style, purity, init, action, distributions)
    legacy_files(artifact_id, path, kind, description)
    extensions(artifact_id, path, module, format, tag, abi3, machine, exported, distributions)
    import_names(artifact_id, distribution, name, kind, origin)   -- origin: computed | declared
    pth_lines(artifact_id, path, line, kind, namespace, text)
    findings(artifact_id, code, severity, path, message, distributions, details)

List-valued columns hold JSON arrays. ``project`` is the canonical (PEP 503) name.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import BadInputError, UsageError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4E535341  # "NSSA": an ns-strip archive index

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts(
    id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, filename TEXT NOT NULL, kind TEXT, size INTEGER,
    status TEXT NOT NULL, reason TEXT, package TEXT, package_version TEXT);
CREATE TABLE IF NOT EXISTS artifact_paths(
    path TEXT PRIMARY KEY, artifact_id INTEGER NOT NULL REFERENCES artifacts(id), size INTEGER, mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS distributions(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), name TEXT NOT NULL, project TEXT NOT NULL,
    version TEXT NOT NULL, metadata_dir TEXT NOT NULL, import_names TEXT NOT NULL, import_namespaces TEXT NOT NULL,
    declared_import_names TEXT, declared_import_namespaces TEXT);
CREATE TABLE IF NOT EXISTS files(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), distribution TEXT NOT NULL, path TEXT NOT NULL,
    size INTEGER, hash TEXT);
CREATE TABLE IF NOT EXISTS namespaces(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), name TEXT NOT NULL, style TEXT NOT NULL, purity TEXT,
    init TEXT, action TEXT NOT NULL, distributions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS legacy_files(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), path TEXT NOT NULL, kind TEXT NOT NULL,
    description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS extensions(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), path TEXT NOT NULL, module TEXT, format TEXT, tag TEXT,
    abi3 INTEGER, machine TEXT, exported TEXT NOT NULL, distributions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS import_names(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), distribution TEXT NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, origin TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pth_lines(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), path TEXT NOT NULL, line INTEGER NOT NULL,
    kind TEXT NOT NULL, namespace TEXT, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings(
    artifact_id INTEGER NOT NULL REFERENCES artifacts(id), code TEXT NOT NULL, severity TEXT NOT NULL,
    path TEXT NOT NULL, message TEXT NOT NULL, distributions TEXT NOT NULL, details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_path ON files(path);
CREATE INDEX IF NOT EXISTS files_artifact ON files(artifact_id);
CREATE INDEX IF NOT EXISTS distributions_artifact ON distributions(artifact_id);
CREATE INDEX IF NOT EXISTS namespaces_artifact ON namespaces(artifact_id);
CREATE INDEX IF NOT EXISTS import_names_artifact ON import_names(artifact_id);
CREATE INDEX IF NOT EXISTS extensions_artifact ON extensions(artifact_id);
"""

# Child tables and the columns that make a row's identity (everything but artifact_id).
CHILD_TABLES = {
    "distributions": ("name", "project", "version", "metadata_dir", "import_names", "import_namespaces",
                      "declared_import_names", "declared_import_namespaces"),
    "files": ("distribution", "path", "size", "hash"),
    "namespaces": ("name", "style", "purity", "init", "action", "distributions"),
    "legacy_files": ("path", "kind", "description"),
    "extensions": ("path", "module", "format", "tag", "abi3", "machine", "exported", "distributions"),
    "import_names": ("distribution", "name", "kind", "origin"),
    "pth_lines": ("path", "line", "kind", "namespace", "text"),
    "findings": ("code", "severity", "path", "message", "distributions", "details"),
}
ARTIFACT_COLUMNS = ("sha256", "filename", "kind", "size", "status", "reason", "package", "package_version")


def canonical_project(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class IndexStore:
    """The SQLite index (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError("no such index (run 'ns-strip archive index' first)", str(path))
        if self.path.exists() and not self.path.is_file():
            raise UsageError("not a regular file", str(path))
        if not self.path.parent.is_dir():
            raise UsageError("the index's directory does not exist", str(path))
        try:
            self.db = sqlite3.connect(os.fspath(self.path), isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._check_or_create(create)
        except sqlite3.DatabaseError as exc:
            raise BadInputError(f"not an ns-strip archive index ({exc})", str(path)) from exc

    def _check_or_create(self, create: bool) -> None:
        application_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if application_id == 0 and tables == 0:
            if not create:
                raise BadInputError("the index is empty", str(self.path))
            self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        if application_id != APPLICATION_ID:
            raise BadInputError("not an ns-strip archive index (another SQLite database)", str(self.path))
        version = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or version[0] != str(SCHEMA_VERSION):
            raise BadInputError(f"index schema {version[0] if version else '?'} is not {SCHEMA_VERSION}; "
                                "index again into a new file", str(self.path))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- what is indexed already -----------------------------------------------------------

    def seen(self, path: str) -> tuple[int, int] | None:
        """(size, mtime_ns) of the file at ``path`` when it was indexed, or None."""
        row = self.db.execute("SELECT size, mtime_ns FROM artifact_paths WHERE path=?", (path,)).fetchone()
        return None if row is None else (row[0], row[1])

    def has_sha256(self, sha256: str) -> bool:
        return self.db.execute("SELECT 1 FROM artifacts WHERE sha256=?", (sha256,)).fetchone() is not None

    # -- writing ---------------------------------------------------------------------------

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def add(self, record: dict[str, Any]) -> bool:
        """Write one artifact's record (inside the caller's transaction); False when an artifact
        with its sha256 was indexed already (only its path is added then)."""
        self.db.execute("SAVEPOINT artifact")
        try:
            added = self._add(record)
        except BaseException:
            self.db.execute("ROLLBACK TO artifact")
            self.db.execute("RELEASE artifact")
            raise
        self.db.execute("RELEASE artifact")
        return added

    def _add(self, record: dict[str, Any]) -> bool:
        sha256 = record["sha256"]
        row = self.db.execute("SELECT id FROM artifacts WHERE sha256=?", (sha256,)).fetchone()
        added = row is None
        if added:
            cursor = self.db.execute(
                f"INSERT INTO artifacts({', '.join(ARTIFACT_COLUMNS)}) VALUES ({', '.join('?' * len(ARTIFACT_COLUMNS))})",
                (sha256, record["filename"], record.get("kind"), record.get("size"), record["status"],
                 record.get("reason"), record.get("package"), record.get("package_version")),
            )
            artifact_id = cursor.lastrowid
            for table, rows in _child_rows(record):
                columns = CHILD_TABLES[table]
                self.db.executemany(
                    f"INSERT INTO {table}(artifact_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
                    ((artifact_id, *values) for values in rows),
                )
        else:
            artifact_id = row[0]
        self.db.execute("INSERT OR REPLACE INTO artifact_paths VALUES (?, ?, ?, ?)",
                        (record["path"], artifact_id, record.get("size"), record.get("mtime_ns")))
        return added

    # -- reading ---------------------------------------------------------------------------

    def canonical(self) -> dict[str, list[tuple]]:
        """The index's content independent of row ids and insertion order (for comparisons):
        every table's rows, with artifact ids replaced by sha256, sorted."""
        sha = dict(self.db.execute("SELECT id, sha256 FROM artifacts"))
        content: dict[str, list[tuple]] = {
            "artifacts": sorted(self.db.execute(f"SELECT {', '.join(ARTIFACT_COLUMNS)} FROM artifacts")),
        }
        for table, columns in CHILD_TABLES.items():
            rows = self.db.execute(f"SELECT artifact_id, {', '.join(columns)} FROM {table}")
            content[table] = sorted(((sha[row[0]], *row[1:]) for row in rows), key=repr)
        return content

    def count(self, table: str, where: str = "") -> int:
        return self.db.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]


def _child_rows(record: dict[str, Any]) -> Iterator[tuple[str, Iterable[tuple]]]:
    dists = record.get("distributions", [])
    yield "distributions", [
        (d["name"], canonical_project(d["name"]), d["version"], d["metadata_dir"], _json(d["import_names"]),
         _json(d["import_namespaces"]), _json(d["declared_import_names"]), _json(d["declared_import_namespaces"]))
        for d in dists
    ]
    yield "files", [tuple(row[3:4]) + tuple(row[0:3]) for row in record.get("files", [])]
    yield "namespaces", [(n["name"], n["style"], n["purity"], n["init"], n["action"], _json(n["distributions"]))
                         for n in record.get("namespaces", [])]
    yield "legacy_files", [(c["path"], c["kind"], c["description"]) for c in record.get("legacy", [])]
    yield "extensions", [(e["path"], e["module"], e["format"], e["tag"], int(bool(e["abi3"])), e["machine"],
                          _json(e["exported"]), _json(e["distributions"])) for e in record.get("extensions", [])]
    names = []
    for d in dists:
        kinds = d.get("import_name_kinds", {})
        for value in d["import_names"]:
            bare = value.partition(";")[0].strip()
            names.append((d["name"], bare, kinds.get(bare, "module"), "computed"))
        names += [(d["name"], value, "namespace", "computed") for value in d["import_namespaces"]]
        names += [(d["name"], value.partition(";")[0].strip(), "name", "declared")
                  for value in d["declared_import_names"] or ()]
        names += [(d["name"], value.partition(";")[0].strip(), "namespace", "declared")
                  for value in d["declared_import_namespaces"] or ()]
    yield "import_names", names
    yield "pth_lines", [(p["path"], p["line"], p["kind"], p["namespace"], p["text"]) for p in record.get("pth", [])]
    yield "findings", [(f["code"], f["severity"], f["path"], f["message"], _json(f.get("distributions", [])),
                        _json({k: v for k, v in f.items()
                               if k not in ("code", "severity", "path", "message", "distribution", "distributions")}))
                       for f in record.get("findings", [])]
