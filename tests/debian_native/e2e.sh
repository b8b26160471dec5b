#!/usr/bin/env bash
# ns-strip on Debian, as a Debian maintainer uses it, with only Debian's packages:
#
#   1. build ns-strip's own packages from this checkout (dpkg-buildpackage -us -uc -b, every
#      Build-Depends installed by apt, no -d) and check them with lintian;
#   2. install them on this machine: apt-get install ./python3-ns-strip_*.deb ./dh-ns-strip_*.deb;
#   3. build the consumer source package in consumer/ (Build-Depends: ... dh-sequence-ns-strip ...)
#      in a clean environment: no pip, no venv, no PYTHONPATH;
#   4. check its .debs ship no namespace __init__.py, -nspkg.pth or namespace_packages.txt;
#   5. install them and python3-ns-strip together into a scratch root with dpkg --root
#      --force-script-chrootless (the file trigger and the scripts honour DPKG_ROOT), import
#      every portion with /usr/bin/python3, remove one and import the rest, purge all and find
#      nothing left.
#
# Run as root on a throwaway Debian 12 machine (CI): it installs packages on the system.
# Usage: tests/debian_native/e2e.sh [WORKDIR]
# shellcheck disable=SC2317  # the helpers below are run through check()
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "${here}/../.." && pwd)
work=${1:-$(mktemp -d /tmp/ns-strip-debian-e2e.XXXXXX)}
mkdir -p "${work}" || exit 2
# The environment of a Debian build and of a maintainer's shell: nothing from a venv or pyenv.
clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${work}" LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok: $*"; }
not_ok() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { # check DESCRIPTION COMMAND...: run it, count it
	local what=$1
	shift
	if "$@" >"${work}/last.log" 2>&1; then ok "${what}"; else not_ok "${what}"; tail -40 "${work}/last.log"; fi
}
finish() {
	echo "debian-native: ${passed} passed, ${failed} failed"
	[[ ${failed} -eq 0 ]]
	exit $?
}

# -- 1. ns-strip's packages ----------------------------------------------------------------------
source_dir=${work}/build/ns-strip
rm -rf "${work}/build" && mkdir -p "${source_dir}"
if git -C "${checkout}" rev-parse --git-dir >/dev/null 2>&1; then
	# What is committed and what is not yet: the checkout as it stands, without build leftovers.
	(cd "${checkout}" && { git ls-files; git ls-files --others --exclude-standard; } | sort -u |
		while read -r file; do [[ -e ${file} ]] && printf '%s\0' "${file}"; done |
		tar --null -T - -cf -) | tar -xf - -C "${source_dir}"
else
	cp -a "${checkout}/." "${source_dir}/"
fi
check "dpkg-checkbuilddeps: every Build-Depends of ns-strip is installed" \
	"${clean_env[@]}" sh -c "cd '${source_dir}' && dpkg-checkbuilddeps"
check "dpkg-buildpackage -us -uc -b builds python3-ns-strip and dh-ns-strip" \
	"${clean_env[@]}" sh -c "cd '${source_dir}' && dpkg-buildpackage -us -uc -b"
cp "${work}/last.log" "${work}/ns-strip-build.log"
ns_strip_debs=("${work}"/build/python3-ns-strip_*_all.deb "${work}"/build/dh-ns-strip_*_all.deb)
[[ -f ${ns_strip_debs[0]} && -f ${ns_strip_debs[1]} ]] || { not_ok "no .debs were built"; finish; }
check "lintian: no error or warning on the built packages" \
	"${clean_env[@]}" lintian --fail-on error,warning "${work}"/build/ns-strip_*.changes
check "dh-ns-strip Provides dh-sequence-ns-strip" \
	sh -c "dpkg-deb -f '${ns_strip_debs[1]}' Provides | grep -qx 'dh-sequence-ns-strip'"
check "the man pages ns-strip(1) and dh_ns_strip(1) are in the packages" \
	sh -c "dpkg-deb -c '${ns_strip_debs[0]}' | grep -q 'usr/share/man/man1/ns-strip.1.gz' &&
	       dpkg-deb -c '${ns_strip_debs[1]}' | grep -q 'usr/share/man/man1/dh_ns_strip.1.gz'"

# -- 2. installed as a maintainer installs them --------------------------------------------------
check "apt-get install ./python3-ns-strip_*.deb ./dh-ns-strip_*.deb" \
	"${clean_env[@]}" apt-get install -y -q "${ns_strip_debs[@]}"
check "ns-strip runs on Debian's own libraries, every command" \
	"${clean_env[@]}" sh -c "for c in scan strip check import-names ext manifest registry render doctor install-debhelper;
	                         do /usr/bin/ns-strip \$c --help >/dev/null || exit 1; done"

# -- 3. the consumer package, with the real Build-Depends -----------------------------------------
consumer=${work}/consumer/nsnative
rm -rf "${work}/consumer" && mkdir -p "${work}/consumer" && cp -a "${here}/consumer" "${consumer}"
check "consumer: dpkg-buildpackage -us -uc -b with Build-Depends: dh-sequence-ns-strip (no -d)" \
	"${clean_env[@]}" sh -c "cd '${consumer}' && dpkg-buildpackage -us -uc -b"
cp "${work}/last.log" "${work}/consumer-build.log"
check "consumer: dh_ns_strip ran between dh_python3 and dh_installdeb" \
	sh -c "grep -E '^   (dh_python3|dh_ns_strip|dh_installdeb)' '${work}/consumer-build.log' | tr -s ' ' |
	       tr '\n' ' ' | grep -q '^ dh_python3 .* dh_ns_strip .* dh_installdeb'"
consumer_debs=("${work}"/consumer/python3-nsnative-{alpha,fast,gamma}_*.deb)
[[ ${#consumer_debs[@]} -eq 3 && -f ${consumer_debs[0]} ]] || { not_ok "consumer .debs missing"; finish; }

# -- 4. the .debs ship no namespace file ---------------------------------------------------------
for deb in "${consumer_debs[@]}"; do
	name=$(basename "${deb}")
	check "${name}: no namespace __init__.py, -nspkg.pth or namespace_packages.txt; a manifest" \
		sh -c "files=\$(dpkg-deb -c '${deb}' | awk '{print \$6}');
		       ! printf '%s\n' \"\${files}\" | grep -E 'dist-packages/nsnative(/plugins)?/__init__\.py\$|-nspkg\.pth\$|namespace_packages\.txt\$' &&
		       printf '%s\n' \"\${files}\" | grep -q '^\./usr/share/ns-strip/manifests/python3-nsnative-.*\.json\$'"
done
check "python3-nsnative-fast ships its compiled extension" \
	sh -c "dpkg-deb -c '${work}'/consumer/python3-nsnative-fast_*.deb | grep -q 'nsnative/fast/_speedups\.cpython-.*\.so\$'"

# -- 5. a scratch root: install together, import, remove one, purge all -------------------------
root=${work}/root
rm -rf "${root}" && mkdir -p "${root}/var/lib/dpkg/info" "${root}/var/lib/dpkg/updates" "${root}/var/lib/dpkg/triggers"
touch "${root}/var/lib/dpkg/status" "${root}/var/lib/dpkg/available"
# The image's Python is this machine's (the scripts run here, chrootless): a stand-in package
# "python3" says so to dpkg, so every dependency is met and triggers are processed as on a real
# system (dpkg defers the trigger of a package whose dependencies are not met).
stand_in=${work}/python3-stand-in
mkdir -p "${stand_in}/DEBIAN"
cat >"${stand_in}/DEBIAN/control" <<EOF
Package: python3
Version: $(dpkg-query -W -f '${Version}' python3)
Architecture: $(dpkg --print-architecture)
Multi-Arch: allowed
Maintainer: ns-strip tests <tests@example.org>
Provides: python3-installer, python3-jinja2, python3-packaging, python3-pyelftools
Description: stand-in: this machine's /usr/bin/python3 and its libraries serve the image
EOF
dpkg-deb --root-owner-group --build "${stand_in}" "${work}/python3-stand-in.deb" >/dev/null
scratch_dpkg() { "${clean_env[@]}" dpkg --root="${root}" --log=/dev/null --force-script-chrootless "$@"; }
site=${root}/usr/lib/python3/dist-packages
imports() { "${clean_env[@]}" /usr/bin/python3 -I -B -c "import site; site.addsitedir('${site}'); $1"; }
counts() { "${clean_env[@]}" ns-strip registry list --root "${root}" --json |
	/usr/bin/python3 -c 'import json, sys; print(sorted((n["name"], n["count"]) for n in json.load(sys.stdin)["namespaces"]))'; }
counts_are() {
	local found
	found=$(counts) || return 1
	[[ ${found} == "$1" ]] || { echo "registry: ${found}, expected $1"; return 1; }
}

check "dpkg --root -i python3-ns-strip" scratch_dpkg -i "${work}/python3-stand-in.deb" "${ns_strip_debs[0]}"
check "dpkg --root -i the three consumer packages together, in one run" scratch_dpkg -i "${consumer_debs[@]}"
cp "${work}/last.log" "${work}/install.log"
check "the file trigger ran once for the three packages" \
	sh -c "[ \$(grep -c 'Processing triggers for python3-ns-strip' '${work}/install.log') -eq 1 ]"
check "the registry counts every package of each namespace directory" \
	counts_are "[('nsnative', 3), ('nsnative.plugins', 1)]"
check "/usr/bin/python3 imports every portion" \
	imports "import nsnative.alpha, nsnative.fast, nsnative.plugins.gamma; assert nsnative.fast.answer() == 42; assert not hasattr(nsnative, '__file__') or nsnative.__file__ is None"
check "ns-strip registry verify agrees with the files" \
	"${clean_env[@]}" ns-strip registry verify --root "${root}"
check "dpkg --root -r python3-nsnative-alpha" scratch_dpkg -r python3-nsnative-alpha
check "the rest still imports; alpha is gone" \
	imports "import nsnative.fast, nsnative.plugins.gamma
try:
    import nsnative.alpha
except ImportError:
    pass
else:
    raise SystemExit('nsnative.alpha still imports')"
check "the registry follows the removal" counts_are "[('nsnative', 2), ('nsnative.plugins', 1)]"
check "dpkg --root -P every consumer package" \
	scratch_dpkg -P python3-nsnative-alpha python3-nsnative-fast python3-nsnative-gamma
check "the registry is empty" counts_are "[]"
check "dpkg --root -P python3-ns-strip" scratch_dpkg -P python3-ns-strip python3
check "nothing is left in the scratch root but dpkg's own database" \
	sh -c "leftovers=\$(cd '${root}' && find . -mindepth 1 ! -path './var' ! -path './var/lib' ! -path './var/lib/dpkg' ! -path './var/lib/dpkg/*');
	       [ -z \"\${leftovers}\" ] || { printf '%s\n' \"\${leftovers}\"; exit 1; }"

finish
