"""The registry's SQLite database: its schema, the lock that serialises ns-strip processes,
connections, transactions, and what a damaged database is refused with.

A database is only ever created whole: the schema is committed in a file beside it that is
then renamed into place. So a registry file that exists but holds no ns-strip schema (emptied,
truncated to a byte, or another program's) is damage, and is refused with a pointer to
``ns-strip registry rebuild``, never read as an empty registry (which would silently forget
every registration).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ApplyError, BadInputError

SCHEMA_VERSION = "1"
# How long to wait for another ns-strip process (lock file) or another connection (SQLite).
WAIT_SECONDS = 120.0
# Every SQLite database file starts with a header of this size.
SQLITE_HEADER_BYTES = 100

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE packages (
    name TEXT PRIMARY KEY,
    site_dir TEXT NOT NULL,
    manifest TEXT NOT NULL,          -- its path in the target system
    manifest_sha256 TEXT NOT NULL,
    placeholders TEXT NOT NULL       -- none | pkgutil
);
-- The reference count of a namespace directory is its number of rows here.
CREATE TABLE contributions (
    site_dir TEXT NOT NULL,
    directory TEXT NOT NULL,         -- relative to site_dir
    package TEXT NOT NULL,
    portions TEXT NOT NULL,          -- JSON list of names the package ships in the directory
    PRIMARY KEY (site_dir, directory, package)
);
-- Files the toolkit created, with the hash they had: only these are ever removed.
CREATE TABLE created (site_dir TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
                      PRIMARY KEY (site_dir, path));
-- Directories whose last package left while they still held files; looked at again later.
CREATE TABLE retired (site_dir TEXT NOT NULL, directory TEXT NOT NULL, PRIMARY KEY (site_dir, directory));
-- Directories whose files must still be brought in line with the rows above.
CREATE TABLE pending (site_dir TEXT NOT NULL, directory TEXT NOT NULL, PRIMARY KEY (site_dir, directory));
"""
# The columns of each table, in order: rows are unpacked by position.
COLUMNS = {
    "meta": ("key", "value"),
    "packages": ("name", "site_dir", "manifest", "manifest_sha256", "placeholders"),
    "contributions": ("site_dir", "directory", "package", "portions"),
    "created": ("site_dir", "path", "sha256"),
    "retired": ("site_dir", "directory"),
    "pending": ("site_dir", "directory"),
}

# Columns that hold a path relative to the row's site dir.
_RELATIVE_PATHS = (("contributions", "directory"), ("created", "path"), ("retired", "directory"),
                   ("pending", "directory"))


def database_files(db: Path) -> list[Path]:
    """The database and the files SQLite keeps beside it."""
    return [db] + [db.with_name(db.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


class Database:
    """One registry database file, its lock file and its checks."""

    def __init__(self, path: Path, checkpoint: Callable[[], None]) -> None:
        self.path = path
        self.lock = path.with_name(path.name + ".lock")
        self.checkpoint = checkpoint

    def exists(self) -> bool:
        return os.path.lexists(self.path)

    # -- errors ------------------------------------------------------------------------------

    def unreadable(self, problem: str) -> BadInputError:
        return BadInputError(
            f"the registry database is corrupt or unreadable ({problem}); rebuild it from the installed "
            f"manifests with 'ns-strip registry rebuild'",
            str(self.path),
        )

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise ApplyError(f"the registry database stayed busy ({text}); nothing was changed",
                                 str(self.path)) from exc
            if "full" in text:
                raise ApplyError(f"cannot write the registry ({text}); the next registry command finishes the change",
                                 str(self.path)) from exc
            raise self.unreadable(text) from exc
        except sqlite3.DatabaseError as exc:
            raise self.unreadable(str(exc)) from exc

    def portions(self, text: object, package: str) -> list[str]:
        """The JSON list of a contributions row, checked: a damaged row is a refusal."""
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except (ValueError, RecursionError):  # a row nested thousands deep is as damaged as bad JSON
            value = None
        if not isinstance(value, list) or not all(isinstance(name, str) and name and "/" not in name
                                                  for name in value):
            raise self.unreadable(f"the portions of {package} are not a JSON list of names: {str(text)[:80]!r}")
        return value

    # -- locking -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        try:
            fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if exclusive:
                raise ApplyError(f"cannot open the lock file: {exc.strerror}; nothing was changed",
                                 str(self.lock)) from exc
            yield  # a reader without write access to the directory reads without the lock
            return
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ApplyError(
                            f"another ns-strip process held the registry lock for {WAIT_SECONDS:g} s; "
                            "nothing was changed",
                            str(self.lock),
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    # -- connections -------------------------------------------------------------------------

    def connect(self, write: bool, path: Path | None = None) -> sqlite3.Connection:
        """Open and check a database; with ``write`` one that does not exist is created whole."""
        path = path or self.path
        if write and not os.path.lexists(path):
            self._create(path)
        self._check_file(path)
        mode = "rw" if write or os.access(path, os.W_OK) else "ro"
        connection = self._open(path, mode)
        try:
            self._check_schema(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _open(self, path: Path, mode: str) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode={mode}"
        connection = sqlite3.connect(uri, uri=True, timeout=WAIT_SECONDS, isolation_level=None)
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def _create(self, path: Path) -> None:
        """Commit the schema in a file beside ``path``, then rename it into place."""
        fresh = path.with_name(path.name + ".new")
        for leftover in database_files(fresh):
            leftover.unlink(missing_ok=True)
        connection = self._open(fresh, "rwc")
        try:
            connection.executescript(
                "BEGIN IMMEDIATE;" + SCHEMA + f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
            )
        finally:
            connection.close()
        self.checkpoint()
        os.replace(fresh, path)
        fsync_directory(path.parent)

    def _check_file(self, path: Path) -> None:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return  # a reader finds no registry; the caller says so
        except OSError as exc:
            raise self.unreadable(exc.strerror or str(exc)) from exc
        if not os.path.isfile(path) or os.path.islink(path):
            raise self.unreadable("not a regular file")
        if info.st_size < SQLITE_HEADER_BYTES:
            raise self.unreadable(f"{info.st_size} bytes, shorter than any SQLite database")

    def _check_schema(self, connection: sqlite3.Connection) -> None:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise self.unreadable("not an ns-strip registry" if tables else "no tables")
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise BadInputError(
                f"registry schema version {found} is not {SCHEMA_VERSION}, the one this ns-strip reads; "
                "use a matching ns-strip, or 'ns-strip registry rebuild'",
                str(self.path),
            )
        missing = [t for t in COLUMNS if t not in tables]
        if missing:
            raise self.unreadable(f"tables missing: {', '.join(missing)}")
        for table, expected in COLUMNS.items():
            found_columns = tuple(column[1] for column in connection.execute(f"PRAGMA table_info({table})"))
            if found_columns != expected:
                raise self.unreadable(f"table {table} has the columns {', '.join(found_columns)}, "
                                      f"not {', '.join(expected)}")
        self._check_rows(connection)

    def _check_rows(self, connection: sqlite3.Connection) -> None:
        """Every value is text, and every path below a site dir stays below it: rows are only
        ever written from checked manifests, so anything else was put there by hand."""
        for table, columns in COLUMNS.items():
            for column in columns:
                bad = connection.execute(
                    f"SELECT {column} FROM {table} WHERE typeof({column}) != 'text' LIMIT 1").fetchone()
                if bad is not None:
                    raise self.unreadable(f"table {table} holds {bad[0]!r} in column {column}, not text")
        for table, columns in COLUMNS.items():
            if "site_dir" in columns:
                bad = connection.execute(f"SELECT site_dir FROM {table} WHERE site_dir NOT LIKE '/%' LIMIT 1").fetchone()
                if bad is not None:
                    raise self.unreadable(f"table {table} names the relative site dir {bad[0]!r}")
        for table, column in _RELATIVE_PATHS:
            bad = connection.execute(
                f"SELECT {column} FROM {table} WHERE {column} = '' OR {column} LIKE '/%' "
                f"OR '/' || {column} || '/' LIKE '%/../%' OR '/' || {column} || '/' LIKE '%/./%' "
                f"OR {column} LIKE '%//%' LIMIT 1").fetchone()
            if bad is not None:
                raise self.unreadable(f"table {table} names {bad[0]!r}, not a path inside its site dir")

    @contextlib.contextmanager
    def transaction(self, connection: sqlite3.Connection) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.checkpoint()  # a kill here: the transaction rolls back
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        self.checkpoint()

    def set_aside_if_unreadable(self) -> str | None:
        """Move a database that cannot be read out of the way (for rebuild); returns where."""
        if not self.exists():
            return None
        try:
            self.connect(write=False).close()
            return None
        except (sqlite3.DatabaseError, BadInputError):
            pass
        aside = self.path.with_name(self.path.name + ".corrupt")
        for path in database_files(self.path):
            if os.path.lexists(path):
                os.replace(path, path.with_name(path.name.replace(self.path.name, aside.name, 1)))
        return str(aside)


def fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # the directory itself was just removed
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the steps are still atomic
    finally:
        os.close(fd)

