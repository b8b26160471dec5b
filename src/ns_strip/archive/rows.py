"""The index's rows: what the worker makes of one artifact's analysis, ready to insert.

The worker (``analyse``) turns its findings into plain tuples, one per row of each child table
(the columns of :data:`CHILD_TABLES`, without ``artifact_id``), JSON-encoding the list-valued
columns there. The coordinator, which alone writes the index and is the serial part of every
run, then only numbers the artifacts and hands each table's rows to one ``executemany`` per
batch; the records it receives are small tuples rather than nested dicts (less to unpickle).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

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

Rows = dict[str, list[tuple]]


def canonical_project(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def child_rows(content: dict[str, Any]) -> Rows:
    """Each child table's rows for one artifact's analysis (``analyse.analyse_source``); tables
    without rows are left out."""
    dists = content.get("distributions", [])
    rows: Rows = {
        "distributions": [
            (d["name"], canonical_project(d["name"]), d["version"], d["metadata_dir"], to_json(d["import_names"]),
             to_json(d["import_namespaces"]), to_json(d["declared_import_names"]),
             to_json(d["declared_import_namespaces"]))
            for d in dists
        ],
        "files": [(row[3], row[0], row[1], row[2]) for row in content.get("files", [])],
        "namespaces": [(n["name"], n["style"], n["purity"], n["init"], n["action"], to_json(n["distributions"]))
                       for n in content.get("namespaces", [])],
        "legacy_files": [(c["path"], c["kind"], c["description"]) for c in content.get("legacy", [])],
        "extensions": [(e["path"], e["module"], e["format"], e["tag"], int(bool(e["abi3"])), e["machine"],
                        to_json(e["exported"]), to_json(e["distributions"])) for e in content.get("extensions", [])],
        "import_names": list(_import_names(dists)),
        "pth_lines": [(p["path"], p["line"], p["kind"], p["namespace"], p["text"]) for p in content.get("pth", [])],
        "findings": [(f["code"], f["severity"], f["path"], f["message"], to_json(f.get("distributions", [])),
                      to_json({k: v for k, v in f.items()
                               if k not in ("code", "severity", "path", "message", "distribution", "distributions")}))
                     for f in content.get("findings", [])],
    }
    return {table: values for table, values in rows.items() if values}


def _import_names(dists: list[dict[str, Any]]) -> Iterable[tuple]:
    for d in dists:
        kinds = d.get("import_name_kinds", {})
        for value in d["import_names"]:
            bare = value.partition(";")[0].strip()
            yield d["name"], bare, kinds.get(bare, "module"), "computed"
        for value in d["import_namespaces"]:
            yield d["name"], value, "namespace", "computed"
        for value in d["declared_import_names"] or ():
            yield d["name"], value.partition(";")[0].strip(), "name", "declared"
        for value in d["declared_import_namespaces"] or ():
            yield d["name"], value.partition(";")[0].strip(), "namespace", "declared"


def storable_text(value: str) -> str:
    """``value`` as the index can hold it: SQLite TEXT is UTF-8, and names read from a hostile
    tree or archive may not be (os and tarfile give their bytes as surrogate escapes), which
    would make the insert fail. Such bytes are written as ``\\xNN``; everything else is kept."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def storable_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every text made storable (:func:`storable_text`), in place."""
    for key, value in record.items():
        if isinstance(value, str):
            record[key] = storable_text(value)
    for table, values in (record.get("rows") or {}).items():
        for number, row in enumerate(values):
            if not all(value.isascii() for value in row if isinstance(value, str)):
                values[number] = tuple(storable_text(value) if isinstance(value, str) else value for value in row)
    return record
