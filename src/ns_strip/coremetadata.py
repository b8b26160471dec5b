"""Reading core metadata fields (METADATA, PKG-INFO) with the standard library's email parser.

packaging's ``packaging.metadata`` (23.1 and later) reads the same header block, and knows the
Metadata 2.5 fields (PEP 794 ``Import-Name``/``Import-Namespace``) only from 25.1 on; Debian 12
ships packaging 23.0, which has no ``packaging.metadata`` at all. ns-strip only *reads* a few
fields, so it reads them here, the same way on every version of packaging:

* the header block is parsed as ``packaging.metadata.parse_email`` parses it (``compat32``
  policy, field names compared case-insensitively, every occurrence of a field kept in order);
* a field whose value is not valid UTF-8 is left out, as ``parse_email`` puts it among the
  "unparsed" fields;
* nothing is validated: what the caller compares is the text as written.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy


def read_fields(data: bytes) -> dict[str, list[str]]:
    """Every header field of a core metadata file: lower-cased name -> values, in order."""
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data, headersonly=True)
    fields: dict[str, list[str]] = {}
    for name in dict.fromkeys(key.lower() for key in parsed.keys()):
        values = []
        for value in parsed.get_all(name) or []:
            text = _text(value)
            if text is None:
                break  # not UTF-8: the whole field is unreadable, as for packaging
            values.append(text)
        else:
            fields[name] = values
    return fields


def single(fields: dict[str, list[str]], name: str) -> str | None:
    """A field that may appear once (Name, Version); None when absent or repeated."""
    values = fields.get(name.lower())
    return values[0] if values is not None and len(values) == 1 else None


def import_fields(data: bytes) -> tuple[list[str] | None, list[str] | None]:
    """PEP 794 ``Import-Name`` and ``Import-Namespace`` values; None for a field that is absent.

    A lone empty ``Import-Name:`` declares "no import names" and reads as an empty list.
    """
    fields = read_fields(data)
    names = fields.get("import-name")
    if names == [""]:
        names = []
    return names, fields.get("import-namespace")


def _text(value: object) -> str | None:
    """A header value as text: bytes that are not ASCII come wrapped in a Header object."""
    if isinstance(value, str):
        return value
    if not isinstance(value, email.header.Header):
        return None
    chunks = []
    for raw, _charset in email.header.decode_header(value):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        chunks.append((raw, "utf-8"))
    return str(email.header.make_header(chunks))
