"""The census as people read it: summary lines for the terminal, and one self-contained HTML
page (tables and CSS bar charts; no script, no network, every value escaped)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from ..findings import Finding

STYLE_WORDS = {
    "pep420": "PEP 420 (no __init__.py)",
    "pkgutil": "pkgutil __init__.py",
    "pkg_resources": "pkg_resources __init__.py",
    "nspkg_pth": "setuptools *-nspkg.pth",
    "declared_only": "declared, no files",
}


def summary_lines(census: Mapping[str, Any], findings: list[Finding], selection: str) -> list[str]:
    lines = [f"Archive census ({selection}): {census['projects']} projects, {census['distributions']} distributions"]
    lines.append("artifacts: " + (", ".join(f"{count} {what}" for what, count in census["artifacts"].items())
                                  or "none"))
    lines.append(f"projects with namespace packages: {census['projects_with_namespaces']}, "
                 f"with legacy ones: {census['projects_with_legacy_namespaces']}")
    for style, count in census["projects_by_namespace_style"].items():
        lines.append(f"  {STYLE_WORDS[style]:<28} {count:>6} projects, {census['namespaces_by_style'][style]} namespaces")
    mixed = census["mixed_namespaces"]
    lines.append(f"namespaces mixing legacy and PEP 420 portions: {len(mixed)}"
                 + (f" ({', '.join(list(mixed)[:8])}{', …' if len(mixed) > 8 else ''})" if mixed else ""))
    pth = census["pth_import_lines"]
    lines.append("executable .pth lines by kind: " + (", ".join(f"{k} {v}" for k, v in pth.items()) or "none"))
    lines.append(f"extension modules: {census['extensions']}; findings: "
                 + ", ".join(f"{code} {count}" for code, count in census["extension_findings"].items()))
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    lines.append("across the archive: " + (", ".join(f"{code} {n}" for code, n in sorted(counts.items())) or
                                            "no conflicts"))
    return lines


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .8em;text-align:left;vertical-align:top}
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.9em;background:#4a7ab5;vertical-align:middle}
.error{color:#a00}.warning{color:#a60}.info{color:#555}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _bars(title: str, values: Mapping[str, int], labels: Mapping[str, str] | None = None) -> str:
    largest = max(values.values(), default=0) or 1
    rows = "".join(
        f"<tr><td>{_e((labels or {}).get(key, key))}</td><td class=n>{count}</td>"
        f"<td><span class=bar style=\"width:{round(300 * count / largest)}px\"></span></td></tr>"
        for key, count in values.items()
    )
    return f"<h2>{_e(title)}</h2><table><tr><th>what</th><th>count</th><th></th></tr>{rows}</table>"


def _table(title: str, header: Iterable[str], rows: Iterable[Iterable[object]], limit: int = 2000) -> str:
    rows = list(rows)
    shown = rows[:limit]
    more = f"<p>… and {len(rows) - limit} more (see --json)</p>" if len(rows) > limit else ""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in shown)
    return f"<h2>{_e(title)} ({len(rows)})</h2><table><tr>{head}</tr>{body}</table>{more}"


def html_page(census: Mapping[str, Any], findings: list[Finding], selection: str) -> str:
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>ns-strip archive census</title>"
             f"<style>{_CSS}</style></head><body><h1>ns-strip archive census</h1>"]
    parts.append("<pre>" + "\n".join(_e(line) for line in summary_lines(census, findings, selection)) + "</pre>")
    parts.append(_bars("Projects by namespace style", census["projects_by_namespace_style"], STYLE_WORDS))
    parts.append(_bars("Artifacts", census["artifacts"]))
    parts.append(_bars("Executable .pth lines by kind", census["pth_import_lines"]))
    parts.append(_bars("Extension findings", census["extension_findings"]))
    parts.append(_table("Namespaces mixing legacy and PEP 420 portions", ("namespace", "legacy projects", "PEP 420 projects"),
                        ((name, v["legacy"], v["pep420"]) for name, v in census["mixed_namespaces"].items())))
    by_code: dict[str, list[Finding]] = {}
    for finding in findings:
        by_code.setdefault(finding.code, []).append(finding)
    for code, group in sorted(by_code.items()):
        severity = group[0].severity.value
        parts.append(_table(f"{code} ({severity})", ("path or name", "message", "distributions"),
                            ((f.path, f.message, ", ".join(f.distributions)) for f in group)))
    parts.append("</body></html>\n")
    return "".join(parts)
