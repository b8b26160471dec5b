# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a pkg_resources-style namespace that setup.py does not declare
# in namespace_packages, so no namespace_packages.txt names it and
# distutils-r1 leaves zope/__init__.py in place:
#	try:
#	    __import__('pkg_resources').declare_namespace(__name__)
#	except ImportError:
#	    from pkgutil import extend_path
#	    __path__ = extend_path(__path__, __name__)
# ns-strip strips it (the pkgutil fallback does not make it a hybrid).
# When setup.py does declare the namespace, distutils-r1 strips it first
# and ns-strip finds nothing left to do: calling it is still harmless.
#
# This example also records the package in the ns-strip registry, which
# keeps per-namespace bookkeeping on the installed system; the helpers do
# nothing where ns-strip has no registry command.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )
NS_STRIP_REGISTRY=1

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Very basic event publishing system"
HOMEPAGE="https://github.com/zopefoundation/zope.event"

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
