# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a setuptools namespace declared with namespace_packages=['zope'].
# setuptools does not install zope/__init__.py for it; the wheel holds
# zope.event-5.0-py3.X-nspkg.pth and a namespace_packages.txt instead.
# ns-strip_python_compile removes both right after the wheel is installed,
# so the tests see a PEP 420 namespace; distutils-r1 would otherwise remove
# them itself after python_install, and the image is the same either way.
#
# This example also records the package in the ns-strip registry, which
# keeps per-namespace bookkeeping on the installed system.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
NS_STRIP_REGISTRY=1
# The sdist is zope.event-5.0.tar.gz, not the normalized zope_event-5.0.tar.gz.
PYPI_NO_NORMALIZE=1
PYPI_PN=${PN/-/.}
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Very basic event publishing system"
HOMEPAGE="
	https://github.com/zopefoundation/zope.event/
	https://pypi.org/project/zope.event/
"

LICENSE="ZPL"
SLOT="0"
KEYWORDS="~amd64"

python_compile() {
	distutils-r1_python_compile
	ns-strip_python_compile
}

src_install() {
	distutils-r1_src_install
	ns-strip_install_manifest
}

pkg_postinst() {
	ns-strip_pkg_postinst
}

pkg_postrm() {
	ns-strip_pkg_postrm
}
