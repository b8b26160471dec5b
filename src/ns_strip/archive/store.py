"""The index: one SQLite file, written by the coordinator only.

Records (see ``analyse``) are written a batch at a time, each batch in one transaction: an
artifact's ``artifacts`` row and all its child rows are there, or none of them. An artifact is
identified by the sha256 of its bytes, so the same file under two names is one artifact
(``artifact_paths`` keeps every name), and an artifact already indexed is never analysed
again: a run that was interrupted loses at most the artifacts in flight, and running it
again completes the index to exactly what an uninterrupted run gives
(:meth:`IndexStore.canonical` is that content, independent of order and of row ids).

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

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BadInputError, UsageError
from .rows import ARTIFACT_COLUMNS, CHILD_TABLES, Rows

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

    def add_many(self, records: Sequence[dict[str, Any]]) -> list[bool]:
        """Write these artifacts' records in one transaction (all of them or none); for each,
        False when an artifact with its sha256 was indexed already (only its path is added).

        A record carries its child rows ready to insert (``rows``: table -> tuples, made by
        the worker, see ``rows``): the coordinator numbers the new artifacts itself (it is the
        only writer, inside an IMMEDIATE transaction) and inserts each table's rows of the
        whole batch with one ``executemany``."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            added = self._add_many(records)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return added

    def _add_many(self, records: Sequence[dict[str, Any]]) -> list[bool]:
        ids = self._ids_of({record["sha256"] for record in records})
        next_id = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM artifacts").fetchone()[0]
        artifacts: list[tuple] = []
        paths: list[tuple] = []
        children: dict[str, list[tuple]] = {}
        added = []
        for record in records:
            sha256 = record["sha256"]
            artifact_id = ids.get(sha256)
            added.append(artifact_id is None)
            if artifact_id is None:
                artifact_id = ids[sha256] = next_id
                next_id += 1
                artifacts.append((artifact_id, sha256, record["filename"], record.get("kind"), record.get("size"),
                                  record["status"], record.get("reason"), record.get("package"),
                                  record.get("package_version")))
                rows: Rows = record.get("rows") or {}
                for table, values in rows.items():
                    if table not in CHILD_TABLES:
                        raise ValueError(f"a record names an unknown table {table!r}")
                    children.setdefault(table, []).extend((artifact_id, *value) for value in values)
            paths.append((record["path"], artifact_id, record.get("size"), record.get("mtime_ns")))
        self.db.executemany(f"INSERT INTO artifacts(id, {', '.join(ARTIFACT_COLUMNS)}) "
                            f"VALUES (?{', ?' * len(ARTIFACT_COLUMNS)})", artifacts)
        for table, values in children.items():
            columns = CHILD_TABLES[table]
            self.db.executemany(f"INSERT INTO {table}(artifact_id, {', '.join(columns)}) "
                                f"VALUES (?{', ?' * len(columns)})", values)
        self.db.executemany("INSERT OR REPLACE INTO artifact_paths VALUES (?, ?, ?, ?)", paths)
        return added

    def _ids_of(self, sha256s: set[str]) -> dict[str, int]:
        """The ids of those of these artifacts indexed already."""
        found: dict[str, int] = {}
        values = sorted(sha256s)
        for start in range(0, len(values), 500):  # well under SQLite's limit of bound parameters
            chunk = values[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT sha256, id FROM artifacts WHERE sha256 IN ({marks})", chunk))
        return found

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
