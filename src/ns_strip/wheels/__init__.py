"""Wheels: read one as a source, validated before anything is used; write a changed copy.

The pipeline, one module each:

- :mod:`.archive`: the ZIP structure, read without trusting it (names, kinds, sizes, local
  headers) and the bytes of a member;
- :mod:`.record`: RECORD checked against the members' contents, as installer checks it;
- :mod:`.source`: :class:`WheelSource`, the wheel shown as installed into a site dir through the
  ``Source`` protocol;
- :mod:`.writer`: a new archive from the old one, members copied raw, written atomically and
  validated again before it replaces anything;
- :mod:`.rawcopy`: byte ranges copied between files inside the kernel.

(``-o``/``--in-place``, the options of the commands that change a wheel, are in
:mod:`ns_strip.clishared` with the other options several commands share.)

The names below are imported from their modules when first asked for: the modules that read
and write wheels bring installer and packaging (about 35 ms of start-up), which no site dir
needs.
"""

from __future__ import annotations

import importlib

# name -> the module of this package that defines it
_EXPORTS = {
    "MAX_TOTAL_UNCOMPRESSED": "archive",
    "WHEEL_NAME_FORM": "archive",
    "is_wheel_filename": "archive",
    "SITE_SCHEMES": "source",
    "WheelSource": "source",
    "apply_change": "writer",
    "copy_wheel": "writer",
    "member_timestamp": "writer",
    "write_wheel": "writer",
}
_MODULES = ("archive", "rawcopy", "record", "source", "writer")

__all__ = [
    "MAX_TOTAL_UNCOMPRESSED",
    "SITE_SCHEMES",
    "WHEEL_NAME_FORM",
    "WheelSource",
    "apply_change",
    "copy_wheel",
    "is_wheel_filename",
    "member_timestamp",
    "write_wheel",
]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value  # asked once
        return value
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
