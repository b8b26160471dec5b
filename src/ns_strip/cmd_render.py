"""``ns-strip render debian|rpm|gentoo``: package-manager snippets from namespace manifests.

Debian and Gentoo get maintainer-script snippets that keep the registry's reference counts
(``ns-strip registry add`` after install, ``remove`` on removal); RPM counts directory owners
itself, so it gets ``%files`` lines in which namespace directories are co-owned with ``%dir``.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable
from pathlib import Path

import jinja2

from .clishared import add_manifest_dir_argument
from .errors import BadInputError, UsageError
from .manifest import Manifest, check_package_name, default_manifest_path, load_manifest
from .registry import PLACEHOLDER_MODES
from .report import Report

FORMATS = ("debian", "rpm", "gentoo")
# debhelper's markers, so the snippets read like every other autoscript in a maintainer script.
DEBIAN_START = "# Automatically added by ns-strip render debian"
DEBIAN_END = "# End automatically added section"
DEBIAN_SCRIPTS = ("postinst", "prerm", "postrm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("manifests", nargs="*", metavar="MANIFEST",
                        help="manifest files (the build-time ones); rpm needs one per package")
    parser.add_argument("--package", action="append", default=[], metavar="PKG",
                        help="render for this package only (repeatable; default: every manifest's package)")
    parser.add_argument("-o", "--output-dir", metavar="DIR",
                        help="write files instead of printing: debian PKG.postinst.debhelper etc. (merged "
                             "like debhelper's autoscript), rpm PKG.files (for %%files -f), gentoo PKG.ebuild.sh")
    add_manifest_dir_argument(parser)
    parser.add_argument("--placeholders", choices=PLACEHOLDER_MODES, default="none",
                        help="debian, gentoo: register with this placeholder mode (see 'registry add')")


def run(args: argparse.Namespace) -> Report:
    manifests = {}
    for path in args.manifests:
        manifest = load_manifest(Path(path))
        manifests[manifest.package] = manifest
    packages = [check_package_name(p) for p in args.package] or list(manifests)
    if not packages:
        raise UsageError("name a package with --package, or give its manifest")
    if args.format == "rpm":
        missing = [p for p in packages if p not in manifests]
        if missing:
            raise UsageError(f"rpm file lists need the manifest of {', '.join(missing)}")

    report = Report(data={"snippets": []})
    environment = _environment()
    for package in packages:
        for kind, text in _render(environment, args, package, manifests.get(package)):
            entry = {"package": package, "format": args.format, "kind": kind, "text": text}
            if args.output_dir:
                path = _write(Path(args.output_dir), args.format, package, kind, text)
                entry["path"] = str(path)
                report.action(f"Writing {args.format} {kind} snippet of {package} to {path}")
            else:
                report.action(text.rstrip("\n"))
            report.data["snippets"].append(entry)
    return report


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ns_strip", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # shell and spec text, not HTML
    )
    environment.filters["sh"] = shlex.quote
    environment.filters["rpm"] = _rpm_path
    return environment


# rpmbuild expands macros in a %files list more than once (rpm 4.18 expands a "-f" list three
# times), so "%%" does not keep a "%"; and it globs an entry that holds a glob character, so
# "br[1].py" would package "br1.py". A one-character class matches only that character and
# survives any number of expansions ("%]" is no macro). glob() takes "{" for brace expansion
# and "\" for an escape even in a class: "?" stands for them, matching one character there.
_RPM_CLASSES = {"%": "[%]", "*": "[*]", "?": "[?]", "[": "[[]", "{": "?", "\\": "?"}


def _rpm_path(path: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)  # keeps the error one line
        raise BadInputError("rpm cannot package a file whose name holds a control character", shown)
    if not any(c.isspace() for c in path):
        return "".join(_RPM_CLASSES.get(c, c) for c in path)
    # White space would split the entry. A quoted entry is taken literally (not globbed), so
    # it can hold no '"' and needs no classes; otherwise "?" stands for the blank and the '"'.
    if not any(c in _RPM_CLASSES or c == '"' for c in path):
        return f'"{path}"'
    return "".join("?" if c.isspace() or c == '"' else _RPM_CLASSES.get(c, c) for c in path)


def _render(environment: jinja2.Environment, args: argparse.Namespace, package: str,
            manifest: Manifest | None) -> Iterable[tuple[str, str]]:
    options = f" --placeholders {args.placeholders}" if args.placeholders != "none" else ""
    context = {"package": package, "manifest": default_manifest_path(args.manifest_dir, package), "add_options": options}
    if args.format == "debian":
        for script in DEBIAN_SCRIPTS:
            yield script, environment.get_template(f"debian-{script}.j2").render(context)
    elif args.format == "gentoo":
        yield "ebuild", environment.get_template("gentoo.j2").render(context)
    else:
        assert manifest is not None
        yield "files", environment.get_template("rpm-files.j2").render(
            rpm_file_lists(manifest, context["manifest"]), package=package, header=not args.output_dir,
        )


def rpm_file_lists(manifest: Manifest, installed_manifest: str) -> dict[str, list[str]]:
    """Absolute paths: directories to co-own, directories to own (with all below), loose files."""
    def absolute(relative: str) -> str:
        return f"{manifest.site_dir.rstrip('/')}/{relative}"

    return {
        "shared_dirs": [absolute(d) for d in manifest.namespaces + manifest.shared_dirs],
        "owned_dirs": [absolute(d) for d in manifest.top_owned_dirs],
        "files": [absolute(f) for f in manifest.loose_files] + [installed_manifest],
    }


def _write(directory: Path, output_format: str, package: str, kind: str, text: str) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if output_format == "debian":
            path = directory / f"{package}.{kind}.debhelper"
            existing = path.read_text(encoding="utf-8") if path.exists() else ""
            rest = _without_our_block(existing)
            # debhelper's order: postinst snippets are appended, prerm and postrm ones prepended,
            # so that removal undoes installation in reverse.
            merged = rest + text if kind == "postinst" else text + rest
        else:
            path = directory / (f"{package}.files" if output_format == "rpm" else f"{package}.ebuild.sh")
            merged = text
        path.write_text(merged, encoding="utf-8")
    except OSError as exc:
        raise BadInputError(f"cannot write: {exc.strerror or exc}", str(directory)) from exc
    return path


def _without_our_block(text: str) -> str:
    """Drop an earlier ns-strip block, so rendering twice leaves one copy."""
    lines = text.splitlines(keepends=True)
    kept, inside = [], False
    for line in lines:
        if line.rstrip("\n") == DEBIAN_START:
            inside = True
        elif inside and line.rstrip("\n") == DEBIAN_END:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)
