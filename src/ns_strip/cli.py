"""The ``ns-strip`` command line: parse, dispatch to a command module, render its Report.

Each command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> Report``; modules are imported only when their command runs, so a build root
that never inspects binaries never imports pyelftools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .clishared import ArgumentParser, RawDescriptionHelpFormatter, common_options
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, NsStripError
from .findings import CHECKS, FindingFilter, Severity, has_errors, parse_code_list
from .report import LineLevel

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

    from .report import Report

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("ns_strip.cmd_scan", "detect namespace packages of every style in site dirs, trees or wheels"),
    "strip": ("ns_strip.cmd_strip", "remove legacy namespace files from a site dir or a wheel, keeping RECORD true"),
    "check": ("ns_strip.cmd_check", "conflicts across several distributions: wheels, site dirs or a mix"),
    "import-names": ("ns_strip.cmd_import_names", "PEP 794 Import-Name / Import-Namespace from the contents; --write them"),
    "ext": ("ns_strip.cmd_ext", "inspect compiled extension modules: real module name, ABI tag, namespace takeovers"),
    "manifest": ("ns_strip.cmd_manifest", "write a package's namespace manifest from its staged site dir"),
    "registry": ("ns_strip.cmd_registry", "per-namespace reference counts of installed packages (add|remove|list|verify|rebuild|sync)"),
    "render": ("ns_strip.cmd_render", "package-manager snippets from manifests: debian, rpm, gentoo"),
    "doctor": ("ns_strip.cmd_doctor", "check an interpreter's sys.path for namespace problems and registry drift"),
    "install-debhelper": ("ns_strip.cmd_install_debhelper", "install dh_ns_strip, its dh add-on and man page (Debian layout)"),
    "archive": ("ns_strip.cmd_archive", "index whole archives of wheels, sdists and .debs; conflicts and census (index|report)"),
}


# Set by main() when the command's module declares EXIT_WITHOUT_TEARDOWN: run() then leaves by
# os._exit once stdout and stderr are flushed. Tearing the interpreter down frees every module
# and object one by one (about 8 ms of CPU after 'ext' over 1,000 files, a third of what
# readelf takes for the same files); a command that holds nothing but its output when main()
# returns (files closed by their with-blocks, locks released by the kernel, no atexit
# handler) does not need it.
_exit_without_teardown = False


def build_parser(command: str | None = None, *, with_commands: bool = True) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, only that command's module is imported and only its
    sub-parser is made (start-up is most of what a single package's build pays; each
    sub-parser costs argparse a formatter per option and a gettext lookup per heading). A
    command that is not one of COMMANDS gets them all, for the error listing the choices.
    Without ``with_commands``, none: the top-level options only."""
    codes = "\n".join(f"  {c.code}  {c.severity.value:<7}  {c.title}" for c in CHECKS.values())
    parser = ArgumentParser(
        prog="ns-strip",
        description="Detect Python namespace packages of every style and convert legacy ones to PEP 420.",
        epilog=(
            "finding codes:\n" + codes + "\n\nexit codes: 0 done, 1 error-level findings, 2 usage error, "
            "3 bad input (nothing changed), 4 failed part-way and rolled back"
        ),
        formatter_class=RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if not with_commands:
        return parser
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    common = common_options()
    for name, (module_name, help_text) in COMMANDS.items():
        if command in COMMANDS and command != name:
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(_module=module_name)
        if command is None or command == name:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse, letting options stand between a command's positionals.

    argparse binds a ``*`` positional as soon as it meets the positionals before an option,
    so ``render debian --package P M.json`` would leave M.json unrecognised; a command's own
    parser reads such a line intermixed (commands with sub-actions cannot, and need not).
    """
    args, extras = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if extras and command in argv:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        try:
            intermixed = subparsers.choices[command].parse_intermixed_args(argv[argv.index(command) + 1:])
        except TypeError:
            pass  # the command has sub-actions: the plain parse below reports the problem
        else:
            intermixed.command = command
            return intermixed
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        arguments = list(sys.argv[1:] if argv is None else argv)
        # The top level has no option taking a value, so the first word is the command.
        command = next((a for a in arguments if not a.startswith("-")), "")
        # A line that starts with --version ends there: argparse prints the version as soon as
        # it meets the option, so sub-parsers (eleven, each a few gettext lookups) would be
        # built for nothing.
        parser = build_parser(command, with_commands=bool(command) or arguments[:1] != ["--version"])
        args = _parse(parser, arguments)
        if not getattr(args, "command", None):
            parser.print_help(err)
            return EXIT_USAGE
        finding_filter = FindingFilter(
            parse_code_list(args.select, "--select"), parse_code_list(args.ignore, "--ignore")
        )
        module = importlib.import_module(args._module)
        report: Report = module.run(args)
        global _exit_without_teardown
        _exit_without_teardown = bool(getattr(module, "EXIT_WITHOUT_TEARDOWN", False))
    except NsStripError as exc:
        print(f"ns-strip: error: {exc}", file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ns-strip: interrupted", file=err)
        return 130
    findings = finding_filter.apply(report.findings)
    if args.json:
        import json  # only --json needs it: every import is start-up a one-package build pays

        payload = {"findings": [f.to_json() for f in findings]}
        payload.update(report.data)
        json.dump(payload, out, indent=2, sort_keys=False)
        out.write("\n")
    else:
        _print_human(report, findings, args, out)
    if report.exit_code is not None:
        return report.exit_code
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _print_human(report: Report, findings: list, args: argparse.Namespace, out: TextIO) -> None:
    for level, text in report.lines:
        if level is LineLevel.DETAIL and not args.verbose:
            continue
        if level is LineLevel.NOTE and args.quiet:
            continue
        print(text, file=out)
    for finding in findings:
        if args.quiet and finding.severity is Severity.INFO:
            continue
        print(finding.to_line(), file=out)


def run() -> None:
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``ns-strip scan --json | head``): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    if _exit_without_teardown:
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
