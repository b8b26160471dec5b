# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a pkgutil-style namespace.  jaraco.functools 3.0.0 ships
# jaraco/__init__.py holding only
#	__path__ = __import__('pkgutil').extend_path(__path__, __name__)
# and declares no namespace_packages, so distutils-r1 leaves it alone.
# Before ns-strip, python_compile removed it by hand,
#	rm "${BUILD_DIR}/install$(python_get_sitedir)"/jaraco/__init__.py || die
# which left its bytecode behind; ns-strip removes the file and the
# bytecode of every optimization level that gpep517 compiled.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYPI_NO_NORMALIZE=1
PYPI_PN=${PN/-/.}
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Functools like those found in stdlib"
HOMEPAGE="
	https://github.com/jaraco/jaraco.functools/
	https://pypi.org/project/jaraco.functools/
"

LICENSE="MIT"
SLOT="0"
KEYWORDS="~amd64"

RDEPEND="
	dev-python/more-itertools[${PYTHON_USEDEP}]
"
# setup.py takes the version from setuptools-scm, which reads PKG-INFO.
BDEPEND="
	dev-python/setuptools-scm[${PYTHON_USEDEP}]
"

python_compile() {
	distutils-r1_python_compile
	ns-strip_python_compile
}
