#!/bin/bash
# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
#
# Stand-ins for what the package manager and python-r1 give an eclass, and a tbegin/tend
# test runner, in the manner of Gentoo's eclass/tests/tests-common.sh. Written for this
# project: the eclass under test runs in plain bash, with no Portage installed.
#
# Messages go to stdout with a fixed prefix ("einfo: ...", "ewarn: ...", "die: ..."), so a
# test can run a phase with its output in a file and grep for what the maintainer would see.

# shellcheck disable=SC2034  # EAPI, CATEGORY, PN, ... are read by the eclass and the ebuilds

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 1
TESTS_ECLASS_SEARCH_PATHS=( "${TESTS_DIR}/.." )

EAPI=8
CATEGORY=dev-python
PN=tests
PV=0
P=${PN}-${PV}
PF=${P}
SLOT=0
EPREFIX=

# The eclasses that ns-strip.eclass is used beside; their stand-ins live in the test file.
TESTS_STAND_IN_ECLASSES=( distutils-r1 python-r1 pypi )

inherit() {
	local e path
	for e in "$@"; do
		if has "${e}" "${TESTS_STAND_IN_ECLASSES[@]}"; then
			continue
		fi
		for path in "${TESTS_ECLASS_SEARCH_PATHS[@]}"; do
			if [[ -e ${path}/${e}.eclass ]]; then
				ECLASS=${e}
				# shellcheck source=/dev/null
				source "${path}/${e}.eclass"
				unset ECLASS
				continue 2
			fi
		done
		die "could not find ${e}.eclass"
	done
}
EXPORT_FUNCTIONS() { :; }

debug-print() {
	[[ ${#} -eq 0 ]] && return
	if [[ ${ECLASS_DEBUG_OUTPUT} == on ]]; then
		printf 'debug: %s\n' "$@" >&2
	fi
}
debug-print-function() {
	debug-print "${1}, parameters: ${*:2}"
}

has() {
	local needle=${1} x
	shift
	for x in "$@"; do
		[[ ${x} == "${needle}" ]] && return 0
	done
	return 1
}

einfo() { echo "einfo: $*"; }
ewarn() { echo "ewarn: $*"; }
eerror() { echo "eerror: $*"; }
elog() { einfo "$@"; }

# die ends the (sub)shell it runs in, as it ends the ebuild phase; tests that expect it run
# the phase in a subshell.
die() {
	if [[ ${1} == -n ]]; then
		shift
	fi
	echo "die: $*"
	exit 1
}

# python-r1's python_get_sitedir: the site dir of the current implementation, absolute in the
# target system. The tests set TEST_SITEDIR to the one the installer actually used.
python_get_sitedir() {
	[[ ${TEST_SITEDIR} ]] || die "python_get_sitedir: TEST_SITEDIR is not set"
	echo "${TEST_SITEDIR}"
}

tret=0
tpassed=0
tfailed=0
tbegin() {
	echo "Testing $*"
}
tend() {
	local status=${1}
	shift
	if [[ ${status} -eq 0 ]]; then
		echo "  [ ok ]"
		: $(( tpassed += 1 ))
	else
		echo "  [ !! ] $*"
		: $(( tfailed += 1 ))
		tret=1
	fi
	return "${status}"
}
texit() {
	[[ ${tmpdir} ]] && rm -rf "${tmpdir}"
	echo "${tpassed} passed, ${tfailed} failed"
	exit "${tret}"
}

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/ns-strip-eclass-tests.XXXXXX") || exit 1
T=${tmpdir}/temp
# Never the build host's own root: a pkg_postinst under test must not touch its registry.
ROOT=${tmpdir}/root
EROOT=${ROOT}${EPREFIX}
mkdir -p "${T}" "${ROOT}" || exit 1
