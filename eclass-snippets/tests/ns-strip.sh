#!/bin/bash
# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
#
# Tests of ns-strip.eclass in the manner of Gentoo's eclass/tests: the eclass functions run in
# bash against the real ns-strip on trees installed the way distutils-r1 installs them, from
# wheels that setuptools builds here, with stand-ins for distutils-r1 that follow the real
# one's phase order.  The example ebuilds, and the eclass with the real distutils-r1, are built
# under real Portage by tests/test_portage_e2e.py.
#
# usage: ns-strip.sh [--list | TEST...]     (no TEST: run them all)
# environment: PYTHON (default python3) builds and installs the wheels and must have build,
# setuptools, wheel and installer; ns-strip is taken from PATH; NS_STRIP_TEST_WHEELS names
# a directory where the wheels are kept between runs.

# NS_STRIP_* and the ebuild variables set here are read by the eclass (SC2034); test
# functions and the phases in them are called indirectly, by name (SC2317).
# shellcheck disable=SC2034,SC2317
# shellcheck source-path=SCRIPTDIR source=tests-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/tests-common.sh" || exit 1

PYTHON=${PYTHON:-python3}
WHEELS=${NS_STRIP_TEST_WHEELS:-${tmpdir}/wheels}

inherit ns-strip

# -- assertions: each ends the test's subshell on failure -------------------------------------

LAST_LOG=
fail() {
	{
		echo "FAIL: $*"
		if [[ ${LAST_LOG} && -f ${LAST_LOG} ]]; then
			echo "--- output of the last phase:"
			sed 's/^/    /' "${LAST_LOG}"
		fi
	} >&2
	exit 1
}

# run_phase <log> <command>...: run a phase in a subshell, as die ends only that.
run_phase() {
	LAST_LOG=${1}
	shift
	( "$@" ) >"${LAST_LOG}" 2>&1
}
expect_success() {
	run_phase "$@" || fail "${*:2} failed"
}
expect_die() {
	if run_phase "$@"; then
		fail "${*:2} should have died"
	fi
	grep -q '^die: ' "${LAST_LOG}" || fail "${*:2} failed without die"
}
assert_log() {
	grep -q -E -e "${1}" "${LAST_LOG}" || fail "output lacks /${1}/"
}
assert_not_log() {
	! grep -q -E -e "${1}" "${LAST_LOG}" || fail "output has /${1}/"
}
assert_exists() {
	[[ -e ${1} ]] || fail "${1} is missing"
}
assert_missing() {
	[[ ! -e ${1} ]] || fail "${1} is still there"
}

# tree_state <dir>: every path with its type and mode, and every file's hash.
tree_state() {
	(
		cd "${1}" || exit 1
		find . -printf '%p %y %m\n' | LC_ALL=C sort
		find . -type f -exec sha256sum {} + | LC_ALL=C sort
	)
}

record_hash() {
	sha256sum "${1}" | cut -c1-64 | tr a-f A-F | basenc --base16 -d | basenc -w0 --base64url | tr -d '='
}

# assert_record_true <site>: every RECORD lists only files that exist, with their hashes.
assert_record_true() {
	local site=${1} record path hash size
	for record in "${site}"/*.dist-info/RECORD; do
		while IFS=, read -r path hash size; do
			[[ ${path} ]] || continue
			[[ -f ${site}/${path} ]] || fail "${record#"${site}"/} lists missing ${path}"
			if [[ ${hash} ]]; then
				[[ ${hash} == "sha256=$(record_hash "${site}/${path}")" ]] ||
					fail "${record#"${site}"/}: wrong hash for ${path}"
				[[ ${size} == "$(stat -c %s "${site}/${path}")" ]] ||
					fail "${record#"${site}"/}: wrong size for ${path}"
			fi
		done <"${record}"
	done
}
assert_not_in_record() {
	! grep -q -F -e "${2}," "${1}"/*.dist-info/RECORD || fail "a RECORD still lists ${2}"
}

# assert_imports <site> <python statements>: run them with only <site> (and the standard
# library) to import from.
assert_imports() {
	PYTHONPATH=${1} "${PYTHON}" -S -c "${2}" >"${T}/import.log" 2>&1 ||
		fail "in ${1}: ${2}: $(cat "${T}/import.log")"
}

# -- wheels, built from small projects shaped like real namespace packages ---------------------

write_file() {
	mkdir -p "${1%/*}" && cat >"${1}"
}

PKGUTIL_INIT="__path__ = __import__('pkgutil').extend_path(__path__, __name__)"
PKG_RESOURCES_INIT="__import__('pkg_resources').declare_namespace(__name__)"
# The usual pkg_resources declaration with a pkgutil fallback: still pkg_resources-style.
FALLBACK_INIT="try:
    __import__('pkg_resources').declare_namespace(__name__)
except ImportError:
    from pkgutil import extend_path
    __path__ = extend_path(__path__, __name__)"

# setup_py <dir> <name> <version> <namespace> <subpackage> [<more setup() arguments>]
setup_py() {
	write_file "${1}/setup.py" <<-EOF
		from setuptools import setup
		setup(name="${2}", version="${3}", packages=["${4}", "${4}.${5}"]${6:+, ${6}})
	EOF
	echo "${7:-X = 1}" | write_file "${1}/${4}/${5}/__init__.py"
}

# jaraco.functools: a pkgutil-style namespace, as in Gentoo's Python guide.
project_jaraco_functools() {
	setup_py "${1}" jaraco.functools 4.1.0 jaraco functools
	echo "${PKGUTIL_INIT}" | write_file "${1}/jaraco/__init__.py"
}

# jaraco.text: a second portion of the same namespace, with the pkg_resources declaration.
project_jaraco_text() {
	setup_py "${1}" jaraco.text 4.0.0 jaraco text
	echo "${PKG_RESOURCES_INIT}" | write_file "${1}/jaraco/__init__.py"
}

# zope.event: a pkg_resources-style __init__.py with a pkgutil fallback, not declared in
# namespace_packages, so distutils-r1 leaves it alone.
project_zope_event() {
	setup_py "${1}" zope.event 5.0 zope event
	echo "${FALLBACK_INIT}" | write_file "${1}/zope/__init__.py"
}

# ruamel.std: setuptools' declared namespace (namespace_packages): the wheel holds a
# -nspkg.pth and namespace_packages.txt and no ruamel/__init__.py.
project_ruamel_std() {
	setup_py "${1}" ruamel.std 0.1 ruamel std 'namespace_packages=["ruamel"]'
	echo "${PKG_RESOURCES_INIT}" | write_file "${1}/ruamel/__init__.py"
}

# paste: a hybrid: the namespace declaration and code that must keep running (line 7 on).
project_paste() {
	setup_py "${1}" Paste 3.10.1 paste util
	write_file "${1}/paste/__init__.py" <<-EOF
		${FALLBACK_INIT}

		try:
		    import modulefinder
		except ImportError:
		    pass
		else:
		    for p in __path__:
		        modulefinder.AddPackagePath(__name__, p)
	EOF
}

# brokenns: a namespace-like __init__.py that does not parse (NS111).
project_brokenns() {
	setup_py "${1}" brokenns.core 1.0 brokenns core
	echo "${PKGUTIL_INIT%)*}" | write_file "${1}/brokenns/__init__.py"
}

# wheel_of <project>: print the path of its wheel, building it once.
wheel_of() {
	local project=${1} out=${WHEELS}/${1}
	if [[ ! -d ${out} ]]; then
		local src=${tmpdir}/src/${project} staging=${WHEELS}/.${project}.${BASHPID}
		rm -rf "${src}" "${staging}"
		"project_${project}" "${src}" || fail "cannot write project ${project}"
		"${PYTHON}" -m build --wheel --no-isolation --outdir "${staging}" "${src}" \
			>"${T}/build-${project}.log" 2>&1 ||
			fail "building the ${project} wheel failed: $(tail -n 20 "${T}/build-${project}.log")"
		# A complete wheel directory appears at once, so a run that died half-way leaves none.
		mv -T "${staging}" "${out}" 2>/dev/null || rm -rf "${staging}"
	fi
	local wheels=( "${out}"/*.whl )
	[[ -f ${wheels[0]} ]] || fail "no wheel in ${out}"
	echo "${wheels[0]}"
}

# install_wheels <root> <project>...: install into <root> as gpep517 does for distutils-r1
# (prefix /usr, bytecode compiled), and set TEST_SITEDIR to the site dir that was used.
install_wheels() {
	local root=${1} project wheel
	shift
	for project in "$@"; do
		wheel=$(wheel_of "${project}") || exit 1
		"${PYTHON}" -m installer --destdir "${root}" --prefix /usr "${wheel}" \
			>"${T}/install.log" 2>&1 || fail "installing ${project}: $(cat "${T}/install.log")"
	done
	TEST_SITEDIR=$(site_in "${root}") || exit 1
	TEST_SITEDIR=${TEST_SITEDIR#"${root}"}
}

# site_in <root>: the site dir below <root> that holds the installed dist-info.
site_in() {
	local dist_info
	dist_info=$(find "${1}" -name '*.dist-info' -type d -print -quit)
	[[ ${dist_info} ]] || fail "no dist-info installed into ${1}"
	echo "${dist_info%/*}"
}

# -- stand-ins for distutils-r1 --------------------------------------------------------------

# What the real distutils-r1 does, in its order (tests/test_portage_e2e.py checks it under
# Portage): distutils-r1_python_compile installs the wheel into ${BUILD_DIR}/install and
# deletes *.dist-info/RECORD; the ebuild's python_compile goes on (ns-strip_python_compile);
# distutils-r1_python_install merges the tree into ${D}; after the ebuild's python_install,
# _distutils-r1_post_python_install strips the declared namespaces in ${D}: for every
# namespace_packages.txt it says "Stripping pkg_resources-style namespace NAME" per line and
# removes the file, then, if there was any, every *-nspkg.pth; a *-nspkg.pth still left
# in ${ED} is fatal.

# TEST_PROJECTS: what the package under test builds.
distutils-r1_python_compile() {
	install_wheels "${BUILD_DIR}/install" "${TEST_PROJECTS[@]}"
	rm -f "${BUILD_DIR}/install${TEST_SITEDIR}"/*.dist-info/RECORD || die
}
distutils-r1_python_install() {
	mkdir -p "${D}" || die
	cp -a "${BUILD_DIR}/install/." "${D}/" || die
}
_distutils-r1_post_python_install() {
	local sitedir=${D}${TEST_SITEDIR} txt ns had_any=
	for txt in "${sitedir}"/*.dist-info/namespace_packages.txt; do
		[[ -f ${txt} ]] || continue
		while read -r ns; do
			einfo "Stripping pkg_resources-style namespace ${ns}"
			had_any=1
		done <"${txt}"
		rm "${txt}" || die
	done
	if [[ ${had_any} ]]; then
		rm -f "${sitedir}"/*-nspkg.pth || die
	fi
	if [[ $(find "${ED}" -name '*-nspkg.pth') ]]; then
		die "Installing *-nspkg.pth files is banned"
	fi
}
distutils-r1_src_install() {
	if declare -F python_install >/dev/null; then
		python_install
	else
		distutils-r1_python_install
	fi
	_distutils-r1_post_python_install
	if declare -F python_install_all >/dev/null; then
		python_install_all
	fi
}

# new_package <name>: fresh build, image and root directories for one test.
new_package() {
	local base=${tmpdir}/${1}
	rm -rf "${base}"
	BUILD_DIR=${base}/build
	D=${base}/image
	ED=${D}
	ROOT=${base}/root
	EROOT=${ROOT}${EPREFIX}
	mkdir -p "${BUILD_DIR}" "${D}" "${ROOT}" || exit 1
	unset NS_STRIP_KEEP NS_STRIP_ARGS NS_STRIP_STRICT
}

# built_package <name> <project>...: a fresh package whose python_compile has run as far as
# distutils-r1_python_compile; SITE is its site dir in ${BUILD_DIR}/install.
built_package() {
	new_package "${1}"
	TEST_PROJECTS=( "${@:2}" )
	# Not in a subshell: the stand-in sets TEST_SITEDIR.
	LAST_LOG=${T}/distutils.log
	distutils-r1_python_compile >"${LAST_LOG}" 2>&1
	SITE=${BUILD_DIR}/install${TEST_SITEDIR}
}

# expect_unchanged <dir> <expect_success|expect_die> <log> <command>...: the command leaves
# every file, directory and mode below <dir> as it was.
expect_unchanged() {
	local dir=${1} before after
	before=$(tree_state "${dir}")
	"${@:2}"
	after=$(tree_state "${dir}")
	[[ ${before} == "${after}" ]] || fail "${*:4} changed ${dir}"
}

# -- the tests -------------------------------------------------------------------------------

TESTS=()
describe() {
	TESTS+=( "${1}" )
	declare -g "TEST_TITLE_${1}=${2}"
}

describe eapi7_dies "EAPI guard dies on EAPI 7"
test_eapi7_dies() {
	eapi7() {
		EAPI=7
		unset _NS_STRIP_ECLASS
		inherit ns-strip
	}
	expect_die "${T}/eapi7.log" eapi7
	assert_log '^die: ns-strip: EAPI 7 not supported'
	eapi8() {
		EAPI=8
		unset _NS_STRIP_ECLASS
		inherit ns-strip
		declare -F ns-strip_python_compile >/dev/null || die "function missing"
	}
	expect_success "${T}/eapi8.log" eapi8
}

describe include_guard "a second inherit leaves the eclass as it was"
test_include_guard() {
	[[ ${_NS_STRIP_ECLASS} ]] || fail "include guard variable not set"
	NS_STRIP_MANIFEST_DIR=/changed
	inherit ns-strip
	[[ ${NS_STRIP_MANIFEST_DIR} == /changed ]] || fail "second inherit ran the eclass body again"
	[[ ${BDEPEND} == *dev-python/ns-strip* ]] || fail "BDEPEND lacks dev-python/ns-strip"
}

describe pkgutil_compile "python_compile strips a pkgutil __init__.py and its bytecode"
test_pkgutil_compile() {
	built_package pkgutil jaraco_functools
	assert_exists "${SITE}/jaraco/__pycache__"
	expect_success "${T}/compile.log" ns-strip_python_compile
	assert_log '^einfo: Stripping pkgutil-style namespace jaraco \(jaraco/__init__\.py\)$'
	assert_not_log '^ewarn: '
	assert_missing "${SITE}/jaraco/__init__.py"
	assert_missing "${SITE}/jaraco/__pycache__"
	assert_exists "${SITE}/jaraco/functools/__init__.py"
	assert_imports "${SITE}" "import jaraco, jaraco.functools; assert jaraco.__file__ is None, jaraco.__file__"
}

describe pkg_resources_compile "python_compile strips undeclared pkg_resources __init__.py files"
test_pkg_resources_compile() {
	built_package pkg_resources zope_event jaraco_text
	expect_success "${T}/compile.log" ns-strip_python_compile
	assert_log '^einfo: Stripping pkg_resources-style namespace zope \(zope/__init__\.py\)$'
	assert_log '^einfo: Stripping pkg_resources-style namespace jaraco \(jaraco/__init__\.py\)$'
	assert_missing "${SITE}/zope/__init__.py"
	assert_missing "${SITE}/jaraco/__init__.py"
	assert_imports "${SITE}" "import zope.event, jaraco.text; assert zope.__file__ is None"
}

describe before_distutils_r1 "python_compile strips declared namespaces before distutils-r1's post-install step"
test_before_distutils_r1() {
	built_package before_distutils ruamel_std zope_event
	assert_missing "${SITE}/ruamel_std-0.1.dist-info/RECORD"
	assert_exists "${SITE}/ruamel_std-0.1.dist-info/namespace_packages.txt"
	expect_success "${T}/compile.log" ns-strip_python_compile
	assert_log '^einfo: Stripping pkg_resources-style namespace ruamel \(ruamel\.std-0\.1-py[0-9.]+-nspkg\.pth\)$'
	assert_log '^einfo: Stripping declaration of namespace ruamel \(ruamel_std-0\.1\.dist-info/namespace_packages\.txt\)$'
	assert_log '^einfo: Stripping pkg_resources-style namespace zope '
	assert_missing "${SITE}/ruamel_std-0.1.dist-info/namespace_packages.txt"

	# distutils-r1's own stripping then finds nothing.
	expect_success "${T}/install.log" distutils-r1_src_install
	assert_not_log 'Stripping'
	assert_imports "${D}${TEST_SITEDIR}" "import ruamel.std, zope.event"
}

describe after_distutils_r1 "after distutils-r1's own stripping: strips the rest, then nothing"
test_after_distutils_r1() {
	built_package after_distutils ruamel_std zope_event
	python_install_all() {
		ns-strip_python_install
	}
	LAST_LOG=${T}/install.log
	( distutils-r1_src_install ) >"${LAST_LOG}" 2>&1 || fail "src_install failed"
	assert_log '^einfo: Stripping pkg_resources-style namespace ruamel$'
	assert_log '^einfo: Stripping pkg_resources-style namespace zope \(zope/__init__\.py\)$'
	assert_not_log 'nspkg'
	local image=${D}${TEST_SITEDIR}
	assert_missing "${image}/ruamel_std-0.1.dist-info/namespace_packages.txt"
	assert_missing "${image}/zope/__init__.py"

	expect_unchanged "${image}" expect_success "${T}/again.log" ns-strip_python_install
	assert_not_log 'Stripping'
	assert_not_log '^ewarn: '
	assert_imports "${image}" "import ruamel.std, zope.event"
}

describe nspkg_left_dies "an -nspkg.pth left without namespace_packages.txt: distutils-r1 dies, ns-strip removes it"
test_nspkg_left_dies() {
	built_package nspkg_left ruamel_std
	rm "${SITE}/ruamel_std-0.1.dist-info/namespace_packages.txt" || fail "cannot remove"
	( distutils-r1_src_install ) >"${T}/banned.log" 2>&1 && fail "distutils-r1 accepted an -nspkg.pth"
	LAST_LOG=${T}/banned.log
	assert_log '^die: Installing \*-nspkg\.pth files is banned'

	rm -rf "${D}" || fail "cannot clean"
	expect_success "${T}/compile.log" ns-strip_python_compile
	assert_log '^einfo: Stripping pkg_resources-style namespace ruamel \(ruamel\.std-0\.1-py[0-9.]+-nspkg\.pth\)$'
	expect_success "${T}/install.log" distutils-r1_src_install
}

describe check_imports "NS_STRIP_CHECK_IMPORTS passes --check-imports and the implementation's interpreter"
test_check_imports() {
	built_package check_imports jaraco_functools
	# A stand-in ns-strip that records its arguments, until the real one has the option.
	local bin=${T}/record-bin
	mkdir -p "${bin}" || fail "cannot mkdir"
	printf '#!/bin/sh\nprintf "%%s\\n" "$@" >"%s/argv"\n' "${T}" >"${bin}/ns-strip"
	chmod +x "${bin}/ns-strip" || fail "cannot chmod"
	recorded_compile() {
		PATH=${bin}:${PATH}
		ns-strip_python_compile
	}
	expect_success "${T}/plain.log" recorded_compile
	! grep -q -x -e --check-imports "${T}/argv" || fail "--check-imports passed without NS_STRIP_CHECK_IMPORTS"
	NS_STRIP_CHECK_IMPORTS=1 PYTHON=/usr/bin/python3.11 expect_success "${T}/check.log" recorded_compile
	grep -q -x -e --check-imports "${T}/argv" || fail "no --check-imports in: $(cat "${T}/argv")"
	grep -A1 -x -e --python "${T}/argv" | grep -q -x /usr/bin/python3.11 ||
		fail "no --python \${PYTHON} in: $(cat "${T}/argv")"
}

describe keep_list "NS_STRIP_KEEP keeps the listed namespace, strips the others"
test_keep_list() {
	built_package keep jaraco_functools zope_event
	NS_STRIP_KEEP=( 'jaraco' )
	expect_success "${T}/keep.log" ns-strip_python_compile
	assert_exists "${SITE}/jaraco/__init__.py"
	assert_exists "${SITE}/jaraco/__pycache__"
	assert_missing "${SITE}/zope/__init__.py"
	assert_not_log 'namespace jaraco'

	unset NS_STRIP_KEEP
	# shellcheck disable=SC2178  # the mistake this test is about
	NS_STRIP_KEEP="jaraco zope"
	expect_unchanged "${SITE}" expect_die "${T}/scalar.log" ns-strip_python_compile
	assert_log '^die: NS_STRIP_KEEP must be an array'
}

describe hybrid_kept "a hybrid __init__.py is kept, with the NS110 explanation as ewarn"
test_hybrid_kept() {
	built_package hybrid paste
	expect_unchanged "${SITE}" expect_success "${T}/hybrid.log" ns-strip_python_compile
	assert_log '^ewarn: NS110 paste/__init__\.py: hybrid pkg_resources-style namespace paste: kept, stripping is blocked by line 7: try: '
	assert_log '^ewarn: A hybrid __init__.py declares a namespace and also runs other code,'
	assert_not_log '^einfo: Stripping'
}

describe extra_args "NS_STRIP_ARGS reaches ns-strip (--ignore NS110 silences the hybrid)"
test_extra_args() {
	built_package extra_args paste
	NS_STRIP_ARGS=( --ignore NS110 )
	expect_success "${T}/ignore.log" ns-strip_python_compile
	assert_not_log '^ewarn: '
	assert_exists "${SITE}/paste/__init__.py"

	NS_STRIP_ARGS=( --no-such-option )
	expect_die "${T}/usage.log" ns-strip_python_compile
	assert_log '^die: ns-strip: usage error'
}

describe unparseable "NS111: ewarn by default, die with NS_STRIP_STRICT"
test_unparseable() {
	built_package unparseable brokenns
	expect_success "${T}/lenient.log" ns-strip_python_compile
	assert_log '^ewarn: NS111 brokenns/__init__\.py: '
	assert_log '^ewarn: ns-strip reported error-level findings'
	assert_exists "${SITE}/brokenns/__init__.py"

	NS_STRIP_STRICT=1
	expect_die "${T}/strict.log" ns-strip_python_compile
	assert_log '^ewarn: NS111 brokenns/__init__\.py: '
	assert_log '^die: ns-strip reported error-level findings .*NS_STRIP_STRICT'
}

describe bad_record "a RECORD with an absolute path: exit 3, die, nothing changed"
test_bad_record() {
	# distutils-r1 deletes RECORD; an ebuild that installs into ${D} by other means keeps it.
	new_package bad_record
	install_wheels "${D}" jaraco_functools
	echo "/etc/passwd,," >>"${D}${TEST_SITEDIR}"/jaraco_functools-4.1.0.dist-info/RECORD || fail "cannot edit RECORD"
	expect_unchanged "${D}" expect_die "${T}/bad.log" ns-strip_python_install
	assert_log "^ns-strip: error: .*RECORD: absolute path in RECORD entry '/etc/passwd'"
	assert_log '^die: ns-strip: malformed or unsafe input in .*; nothing was changed$'
}

describe python_install "python_install strips the image in D"
test_python_install() {
	new_package image
	TEST_PROJECTS=( jaraco_functools )
	install_wheels "${D}" "${TEST_PROJECTS[@]}"
	expect_success "${T}/install.log" ns-strip_python_install
	assert_log '^einfo: Stripping pkgutil-style namespace jaraco '
	assert_missing "${D}${TEST_SITEDIR}/jaraco/__init__.py"
	assert_record_true "${D}${TEST_SITEDIR}"
}

describe not_installed_yet "called before anything was installed: die naming the directory"
test_not_installed_yet() {
	new_package empty
	TEST_SITEDIR=/usr/lib/python3.12/site-packages
	expect_die "${T}/empty.log" ns-strip_python_compile
	assert_log "^die: ns-strip_sitedir: ${BUILD_DIR}/install${TEST_SITEDIR} is not a directory"
	expect_die "${T}/usage.log" ns-strip_sitedir "${D}"
	assert_log '^die: ns-strip_sitedir: usage: '
}

describe no_ns_strip "ns-strip missing from PATH: die pointing at BDEPEND"
test_no_ns_strip() {
	built_package missing jaraco_functools
	mkdir -p "${T}/empty-path"
	no_path_compile() {
		# shellcheck disable=SC2123  # a PATH without ns-strip is the point
		PATH=${T}/empty-path
		ns-strip_python_compile
	}
	expect_die "${T}/missing.log" no_path_compile
	assert_log '^die: ns-strip: command not found \(is dev-python/ns-strip in BDEPEND\?\)'
	assert_exists "${SITE}/jaraco/__init__.py"
}

describe registry_helpers "registry helpers: register, survive an upgrade, unregister"
test_registry_helpers() {
	built_package registry jaraco_functools
	CATEGORY=dev-python PN=jaraco-functools
	ns-strip_python_compile >/dev/null
	distutils-r1_python_install
	if ! ns-strip registry --help >/dev/null 2>&1; then
		# This ns-strip has no registry: the helpers must not fail nor write anything.
		expect_success "${T}/manifest.log" ns-strip_install_manifest
		[[ ! -e ${D}${NS_STRIP_MANIFEST_DIR} ]] || fail "a manifest was installed without the command"
		expect_success "${T}/postinst.log" ns-strip_pkg_postinst
		[[ ! -s ${LAST_LOG} ]] || fail "pkg_postinst printed something"
		expect_success "${T}/postrm.log" ns-strip_pkg_postrm
		[[ ! -s ${LAST_LOG} ]] || fail "pkg_postrm printed something"
		return 0
	fi

	# Nothing installed by ns-strip_install_manifest: nothing to register.
	expect_success "${T}/nothing.log" ns-strip_pkg_postinst
	[[ ! -s ${LAST_LOG} ]] || fail "pkg_postinst without a manifest printed something"

	# Not in a subshell: _NS_STRIP_PACKAGES must reach the pkg_* phases, as the package
	# manager keeps it in the saved environment.
	LAST_LOG=${T}/manifest.log
	ns-strip_install_manifest >"${LAST_LOG}" 2>&1
	local impl=${TEST_SITEDIR%/*-packages}
	local name=dev-python.jaraco-functools.${impl##*/}
	[[ ${_NS_STRIP_PACKAGES[*]} == "${name}" ]] || fail "registered names: ${_NS_STRIP_PACKAGES[*]}, not ${name}"
	assert_exists "${D}${NS_STRIP_MANIFEST_DIR}/${name}.json"

	# Merge into ROOT, as the package manager does, then pkg_postinst.
	cp -a "${D}/." "${ROOT}/" || fail "cannot merge"
	expect_success "${T}/postinst.log" ns-strip_pkg_postinst
	assert_log "Registered ${name}"
	ns-strip registry list --root "${ROOT}" >"${T}/list.log" 2>&1 || fail "registry list: $(cat "${T}/list.log")"
	grep -q -F "${name}" "${T}/list.log" || fail "${name} not registered: $(cat "${T}/list.log")"

	# An upgrade: the old version's pkg_postrm leaves the registration to the new one.
	REPLACED_BY_VERSION=4.2.0 expect_success "${T}/upgrade.log" ns-strip_pkg_postrm
	[[ ! -s ${LAST_LOG} ]] || fail "pkg_postrm on an upgrade did something"
	ns-strip registry list --root "${ROOT}" >"${T}/list.log" 2>&1 || fail "registry list failed"
	grep -q -F "${name}" "${T}/list.log" || fail "${name} unregistered by an upgrade"

	# Removal: the files go, then pkg_postrm unregisters.
	rm -r "${ROOT:?}${TEST_SITEDIR}/jaraco" "${ROOT}${TEST_SITEDIR}"/jaraco_functools-*.dist-info \
		"${ROOT}${NS_STRIP_MANIFEST_DIR}/${name}.json" || fail "cannot unmerge"
	expect_success "${T}/postrm.log" ns-strip_pkg_postrm
	assert_log "Unregistered ${name}"
	ns-strip registry list --root "${ROOT}" >"${T}/list.log" 2>&1 || fail "registry list failed"
	! grep -q -F "${name}" "${T}/list.log" || fail "${name} still registered"
}

# -- main ------------------------------------------------------------------------------------

if [[ ${1} == --list ]]; then
	printf '%s\n' "${TESTS[@]}"
	rm -rf "${tmpdir}"
	exit 0
fi

selected=( "$@" )
[[ ${#selected[@]} -gt 0 ]] || selected=( "${TESTS[@]}" )
for name in "${selected[@]}"; do
	if ! has "${name}" "${TESTS[@]}"; then
		echo "no such test: ${name}" >&2
		tret=2
		continue
	fi
	title=TEST_TITLE_${name}
	tbegin "${!title}"
	# Each test runs in its own subshell: a die or a failed assertion ends only that test,
	# and what one test sets up never leaks into the next.
	( "test_${name}" )
	tend ${?} "${name}"
done
texit
