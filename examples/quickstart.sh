#!/usr/bin/env bash
# Quick start on a fresh Debian 12, from a clone of this repository, as root: build ns-strip's
# Debian packages with Debian's own tools and libraries, install them with apt, and run ns-strip
# on the example staging root it ships (examples/demo-root: a Debian-style
# /usr/lib/python3/dist-packages holding zope, jaraco, ruamel and a hybrid acme).
#
#   bash examples/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# ns-strip's Build-Depends (debian/control) and dpkg-dev for dpkg-buildpackage.
apt-get install -y -qq --no-install-recommends dpkg-dev debhelper dh-python flit pybuild-plugin-pyproject \
	python3-all python3-docutils python3-installer python3-jinja2 python3-packaging python3-pyelftools >/dev/null

# dpkg-buildpackage writes the .debs next to the source tree: build in a copy of the checkout.
build=$(mktemp -d /tmp/ns-strip-build.XXXXXX)
mkdir "${build}/ns-strip"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "${build}/ns-strip"
else
	cp -a . "${build}/ns-strip"
fi
(cd "${build}/ns-strip" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="${build}" LC_ALL=C.UTF-8 \
	dpkg-buildpackage -us -uc -b >"${build}/build.log" 2>&1) || { tail -30 "${build}/build.log"; exit 1; }
apt-get install -y -qq "${build}"/python3-ns-strip_*_all.deb "${build}"/dh-ns-strip_*_all.deb >/dev/null
echo "Installed python3-ns-strip and dh-ns-strip from ${build}"

rm -rf /tmp/ns-demo
cp -a examples/demo-root /tmp/ns-demo
ns-strip scan --root /tmp/ns-demo /usr/lib/python3/dist-packages
ns-strip strip --root /tmp/ns-demo /usr/lib/python3/dist-packages
