# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a pkgutil-style namespace (jaraco/__init__.py holds only
# "__path__ = __import__('pkgutil').extend_path(__path__, __name__)").
# distutils-r1 does not touch it: it only strips namespaces declared in
# namespace_packages.txt.  Before ns-strip, python_compile removed the file
# by hand:
#	rm "${BUILD_DIR}/install$(python_get_sitedir)"/jaraco/__init__.py || die
# ns-strip finds it by its syntax tree, removes its bytecode too, and takes
# it out of the RECORD.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Functools like those found in stdlib"
HOMEPAGE="https://github.com/jaraco/jaraco.functools"

LICENSE="MIT"
SLOT="0"
KEYWORDS="~amd64"

RDEPEND="
	dev-python/more-itertools[${PYTHON_USEDEP}]
"

python_compile() {
	distutils-r1_python_compile
	ns-strip_python_compile
}
