# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash
# Eclass variables (EAPI, ECLASS, BUILD_DIR, D, ED, EROOT, ROOT, CATEGORY, PN) come from the
# package manager, python_get_sitedir from python-r1; ${FUNCNAME} is the current function's
# name, as every eclass uses it.
# shellcheck disable=SC2154,SC2128

# @ECLASS: ns-strip.eclass
# @MAINTAINER:
# ns-strip developers <maintainers@users.noreply.github.com>
# @SUPPORTED_EAPIS: 8
# @BLURB: Strip legacy Python namespace package files with ns-strip
# @DESCRIPTION:
# distutils-r1.eclass strips only the setuptools namespaces that a package
# declares: it removes namespace_packages.txt and the -nspkg.pth files in
# _distutils-r1_post_python_install, after the ebuild's python_install, and
# dies if an -nspkg.pth is left.  Everything else, pkgutil-style
# __init__.py files and pkg_resources-style ones that are not declared, is
# left to a hand-written "rm .../jaraco/__init__.py || die" in each ebuild,
# which leaves their bytecode behind.  This eclass turns that into one call
# of ns-strip(1), which finds namespace packages of every style by their
# syntax tree, removes the pure legacy files and their bytecode, and keeps
# (with a warning that names the blocking lines) hybrid __init__.py files
# that also run other code.
#
# What happens in which phase under Portage, per implementation:
# distutils-r1_python_compile builds the wheel, installs it into
# ${BUILD_DIR}/install with bytecode of every optimization level and
# deletes *.dist-info/RECORD; ns-strip_python_compile, called right after
# it, strips that tree, so the tests see PEP 420 namespaces;
# distutils-r1_python_install merges the tree into ${D}; then
# _distutils-r1_post_python_install strips what is still declared (with
# ns-strip first, nothing).  ns-strip_python_install strips ${D} instead,
# for ebuilds that install by other means.  Running ns-strip after
# distutils-r1's own stripping, or twice, gives the same image.
# @EXAMPLE:
#
# @CODE
# EAPI=8
# DISTUTILS_USE_PEP517=setuptools
# PYTHON_COMPAT=( python3_{11..13} )
# inherit distutils-r1 ns-strip
#
# python_compile() {
# 	distutils-r1_python_compile
# 	ns-strip_python_compile
# }
# @CODE

case ${EAPI} in
	8) ;;
	*) die "${ECLASS}: EAPI ${EAPI:-0} not supported" ;;
esac

if [[ ! ${_NS_STRIP_ECLASS} ]]; then
_NS_STRIP_ECLASS=1

# @ECLASS_VARIABLE: NS_STRIP_REGISTRY
# @PRE_INHERIT
# @DEFAULT_UNSET
# @DESCRIPTION:
# Set to a non-empty value before inheriting to use the registry helpers
# (ns-strip_install_manifest, ns-strip_pkg_postinst, ns-strip_pkg_postrm):
# ns-strip is then needed at install time too (IDEPEND).

# @ECLASS_VARIABLE: NS_STRIP_KEEP
# @DEFAULT_UNSET
# @DESCRIPTION:
# Array of glob patterns of files or dotted namespace names never to
# strip, passed to ns-strip as --keep.  A pattern matches a path relative
# to the site dir (jaraco/__init__.py) or the namespace name (jaraco).
# @CODE
# NS_STRIP_KEEP=( 'zope' 'jaraco/*/__init__.py' )
# @CODE

# @ECLASS_VARIABLE: NS_STRIP_ARGS
# @DEFAULT_UNSET
# @DESCRIPTION:
# Array of extra arguments for "ns-strip strip", e.g. ( --ignore NS110 )
# to silence the hybrid warning of a file that is known and reported
# upstream.

# @ECLASS_VARIABLE: NS_STRIP_CHECK_IMPORTS
# @DEFAULT_UNSET
# @DESCRIPTION:
# When non-empty, "ns-strip strip" gets --check-imports (and --python
# "${PYTHON}" inside a python_compile or python_install phase): after
# stripping, it imports every top-level name and namespace portion with
# the target interpreter and rolls back (exit status 4, which dies) if
# something that imported before fails after.  It needs an ns-strip that
# knows --check-imports; the build dies with a usage error otherwise.

# @ECLASS_VARIABLE: NS_STRIP_STRICT
# @USER_VARIABLE
# @DEFAULT_UNSET
# @DESCRIPTION:
# When non-empty, error-level findings of ns-strip (exit status 1, e.g.
# NS111: a namespace-like __init__.py that cannot be parsed) stop the
# build.  Unset, they are shown with ewarn and the files stay in place.

# @ECLASS_VARIABLE: NS_STRIP_MANIFEST_DIR
# @DESCRIPTION:
# Where ns-strip_install_manifest installs the package's namespace
# manifests and where the registry helpers find them, below ${EPREFIX}
# (in ${ED} at build time, in ${EROOT} once merged).  It is also the
# default of "ns-strip registry rebuild".
: "${NS_STRIP_MANIFEST_DIR:=/usr/share/ns-strip/manifests}"

# The package manager reads these; eclass values add to the ebuild's.
# shellcheck disable=SC2034
BDEPEND="dev-python/ns-strip"
if [[ ${NS_STRIP_REGISTRY} ]]; then
	# shellcheck disable=SC2034
	IDEPEND="dev-python/ns-strip"
fi

# @FUNCTION: ns-strip_python_compile
# @DESCRIPTION:
# Strip the legacy namespace files of the current Python implementation
# from ${BUILD_DIR}/install, where distutils-r1_python_compile installed
# the wheel.  Call it right after distutils-r1_python_compile.
ns-strip_python_compile() {
	debug-print-function "${FUNCNAME}" "$@"

	ns-strip_sitedir "${BUILD_DIR}/install" "$(python_get_sitedir)"
}

# @FUNCTION: ns-strip_python_install
# @DESCRIPTION:
# Strip the legacy namespace files of the current Python implementation
# from the image, ${D}$(python_get_sitedir).  Call it at the end of
# python_install when the package was installed into ${D} by other means
# than distutils-r1_python_compile.
ns-strip_python_install() {
	debug-print-function "${FUNCNAME}" "$@"

	ns-strip_sitedir "${D}" "$(python_get_sitedir)"
}

# @FUNCTION: ns-strip_sitedir
# @USAGE: <root> <sitedir>
# @DESCRIPTION:
# Run "ns-strip strip" on <sitedir> (absolute in the target system) inside
# the staging directory <root>, honouring NS_STRIP_KEEP, NS_STRIP_ARGS and
# NS_STRIP_STRICT.  What ns-strip did is shown with einfo, what it kept
# and why with ewarn.  Dies on a usage error, on malformed or unsafe
# input (nothing was changed then) and on a failure that ns-strip rolled
# back.  Error-level findings die only with NS_STRIP_STRICT.
ns-strip_sitedir() {
	debug-print-function "${FUNCNAME}" "$@"

	[[ ${#} -eq 2 ]] || die "${FUNCNAME}: usage: ${FUNCNAME} <root> <sitedir>"
	local root=${1} sitedir=${2}
	[[ -d ${root}${sitedir} ]] ||
		die "${FUNCNAME}: ${root}${sitedir} is not a directory (was the package installed there yet?)"
	_ns-strip_require_array NS_STRIP_KEEP
	_ns-strip_require_array NS_STRIP_ARGS

	# --quiet leaves only actions and warning- or error-level findings, so
	# every line that starts with a finding code deserves an ewarn.
	local -a args=( strip --quiet --root "${root}" "${sitedir}" )
	local pattern
	for pattern in "${NS_STRIP_KEEP[@]}"; do
		args+=( --keep "${pattern}" )
	done
	if [[ ${NS_STRIP_CHECK_IMPORTS} ]]; then
		args+=( --check-imports )
		[[ ${PYTHON} ]] && args+=( --python "${PYTHON}" )
	fi
	args+=( "${NS_STRIP_ARGS[@]}" )

	local status=0
	_ns-strip_run "${args[@]}" || status=${?}

	case ${status} in
		0) ;;
		1)
			if [[ ${NS_STRIP_STRICT} ]]; then
				die "ns-strip reported error-level findings in ${sitedir} (NS_STRIP_STRICT is set)"
			fi
			ewarn "ns-strip reported error-level findings in ${sitedir}; the files named"
			ewarn "above were kept.  Set NS_STRIP_STRICT=1 to make this fatal."
			;;
		2) die "ns-strip: usage error (check NS_STRIP_KEEP, NS_STRIP_ARGS and NS_STRIP_CHECK_IMPORTS)" ;;
		3) die "ns-strip: malformed or unsafe input in ${root}${sitedir}; nothing was changed" ;;
		4) die "ns-strip failed part-way in ${root}${sitedir} and rolled back (or left a journal for the next run)" ;;
		127) die "ns-strip: command not found (is dev-python/ns-strip in BDEPEND?)" ;;
		*) die "ns-strip failed with exit status ${status}" ;;
	esac
}

# @FUNCTION: _ns-strip_require_array
# @USAGE: <variable>
# @INTERNAL
# @DESCRIPTION:
# Die unless <variable> is unset or an array: a string with spaces would
# be split into the wrong patterns or arguments.
_ns-strip_require_array() {
	debug-print-function "${FUNCNAME}" "$@"

	local declaration
	declaration=$(declare -p "${1}" 2>/dev/null) || return 0
	[[ ${declaration} == "declare -a"* ]] || die "${1} must be an array, e.g. ${1}=( ... )"
}

# @FUNCTION: _ns-strip_run
# @USAGE: <ns-strip argument>...
# @INTERNAL
# @DESCRIPTION:
# Run ns-strip and show its output through einfo and ewarn; return its
# exit status.  The output is read after ns-strip ends, not through a
# pipe, so the status survives.  Its error messages stay on stderr.
_ns-strip_run() {
	debug-print-function "${FUNCNAME}" "$@"

	local output status=0
	output=$(ns-strip "$@") || status=${?}
	_ns-strip_show "${output}"
	return "${status}"
}

# @FUNCTION: _ns-strip_show
# @USAGE: <output>
# @INTERNAL
# @DESCRIPTION:
# Show ns-strip's human output: one line per action (einfo) or per
# finding (ewarn; its line starts with the code).  "strip --quiet" prints
# only warning- and error-level findings.  Hybrids (NS110) get an
# explanation of why they stay.
_ns-strip_show() {
	debug-print-function "${FUNCNAME}" "$@"

	local line hybrid=
	while IFS= read -r line; do
		[[ ${line} ]] || continue
		if [[ ${line} =~ ^NS[0-9]{3}[[:space:]] ]]; then
			ewarn "${line}"
			[[ ${line} == NS110* ]] && hybrid=1
		else
			einfo "${line}"
		fi
	done <<<"${1}"

	if [[ ${hybrid} ]]; then
		ewarn "A hybrid __init__.py declares a namespace and also runs other code,"
		ewarn "so removing it would lose that code: it is kept, and the namespace"
		ewarn "stays a legacy one.  Ask upstream to move the code out of it; add"
		ewarn "--ignore NS110 to NS_STRIP_ARGS to silence this for a known file."
	fi
}

# @FUNCTION: _ns-strip_has_command
# @USAGE: <command>
# @INTERNAL
# @DESCRIPTION:
# Succeed when the installed ns-strip knows <command> (an unknown command
# is a usage error, and a missing ns-strip fails too).
_ns-strip_has_command() {
	debug-print-function "${FUNCNAME}" "$@"

	ns-strip "${1}" --help >/dev/null 2>&1
}

# @ECLASS_VARIABLE: _NS_STRIP_PACKAGES
# @INTERNAL
# @DESCRIPTION:
# The registry names of the manifests ns-strip_install_manifest wrote,
# one per Python site dir.  Set in src_install; the package manager keeps
# it for pkg_postinst and pkg_postrm, as it keeps every global variable.

# @FUNCTION: _ns-strip_registry_name
# @USAGE: <sitedir>
# @INTERNAL
# @DESCRIPTION:
# The name this package's files in <sitedir> are registered under:
# CATEGORY.PN.IMPL, e.g. dev-python.jaraco-functools.python3.12.  The
# registry allows no "/" in names, and a PN never holds a ".", so the
# name of one package is never the start of another's.
_ns-strip_registry_name() {
	debug-print-function "${FUNCNAME}" "$@"

	local impl=${1%/*-packages}
	echo "${CATEGORY}.${PN}.${impl##*/}"
}

# @FUNCTION: ns-strip_install_manifest
# @DESCRIPTION:
# Record which namespaces this package shares, for the ns-strip registry:
# for every Python site dir in the image, write its manifest with
# "ns-strip manifest" into ${NS_STRIP_MANIFEST_DIR} in the image.  Call it
# in src_install after distutils-r1_src_install.  Does nothing when the
# installed ns-strip has no manifest command.
ns-strip_install_manifest() {
	debug-print-function "${FUNCNAME}" "$@"

	if ! _ns-strip_has_command manifest; then
		einfo "ns-strip has no manifest command; no namespace manifest installed"
		return 0
	fi
	local dir sitedir name
	_NS_STRIP_PACKAGES=()
	for dir in "${ED}"/usr/lib*/{python,pypy}*/site-packages; do
		[[ -d ${dir} ]] || continue
		# Paths below ${EPREFIX}: the registry helpers treat ${EROOT} as the
		# root of the system, so a Prefix keeps its registry to itself.
		sitedir=${dir#"${ED}"}
		name=$(_ns-strip_registry_name "${sitedir}")
		_ns-strip_run manifest --root "${ED}" "${sitedir}" --package "${name}" \
			--manifest-dir "${NS_STRIP_MANIFEST_DIR}" ||
			die "ns-strip manifest failed for ${sitedir}"
		_NS_STRIP_PACKAGES+=( "${name}" )
	done
	[[ ${#_NS_STRIP_PACKAGES[@]} -gt 0 ]] || die "${FUNCNAME}: no Python site dir in ${ED}"
}

# @FUNCTION: ns-strip_pkg_postinst
# @DESCRIPTION:
# Register the manifests that ns-strip_install_manifest installed, so the
# registry counts which installed packages use each namespace directory
# (again on an upgrade).  The registry is the one below ${EROOT}, so a
# Prefix has its own.  Does nothing when ns-strip or its registry command
# is not installed, or when no manifest was installed.
ns-strip_pkg_postinst() {
	debug-print-function "${FUNCNAME}" "$@"

	_ns-strip_has_command registry || return 0
	local name
	for name in "${_NS_STRIP_PACKAGES[@]}"; do
		# The files are merged already: failing the merge now would not undo
		# that, so a registry that could not be updated is reported instead.
		_ns-strip_run registry add --root "${EROOT:-/}" "${name}" \
			"${NS_STRIP_MANIFEST_DIR}/${name}.json" ||
			ewarn "ns-strip registry add failed for ${name}; see 'ns-strip registry verify'"
	done
}

# @FUNCTION: ns-strip_pkg_postrm
# @DESCRIPTION:
# Unregister this package when it is removed.  On an upgrade the old
# version's pkg_postrm runs before the new one's pkg_postinst, which
# registers the package again: unregistering in between would let the
# registry clean up namespace directories the new version still uses, so
# it is skipped then.  Does nothing when ns-strip or its registry command
# is not installed.
ns-strip_pkg_postrm() {
	debug-print-function "${FUNCNAME}" "$@"

	[[ ${REPLACED_BY_VERSION} ]] && return 0
	_ns-strip_has_command registry || return 0
	local name
	for name in "${_NS_STRIP_PACKAGES[@]}"; do
		_ns-strip_run registry remove --root "${EROOT:-/}" "${name}" ||
			ewarn "ns-strip registry remove failed for ${name}; see 'ns-strip registry verify'"
	done
}

fi
