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
"""

from __future__ import annotations

from .archive import MAX_TOTAL_UNCOMPRESSED, WHEEL_NAME_FORM, is_wheel_filename
from .source import SITE_SCHEMES, WheelSource
from .writer import (
    add_output_arguments,
    apply_change,
    copy_wheel,
    member_timestamp,
    output_path,
    write_wheel,
)

__all__ = [
    "MAX_TOTAL_UNCOMPRESSED",
    "SITE_SCHEMES",
    "WHEEL_NAME_FORM",
    "WheelSource",
    "add_output_arguments",
    "apply_change",
    "copy_wheel",
    "is_wheel_filename",
    "member_timestamp",
    "output_path",
    "write_wheel",
]
