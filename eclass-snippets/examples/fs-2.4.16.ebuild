# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a hybrid.  fs/__init__.py of fs 2.4.16 declares a
# pkg_resources-style namespace (undeclared in setup.cfg, so distutils-r1
# does not touch it) and then runs the package's own code:
#	__import__("pkg_resources").declare_namespace(__name__)
#	from . import path
#	...
# Removing it would lose that code, so ns-strip keeps it and says why,
# naming the blocking line:
#	NS110 fs/__init__.py: hybrid pkg_resources-style namespace fs: kept,
#	  stripping is blocked by line 6: from . import path; ... [fs]
# Once the maintainer has reported it upstream, --ignore NS110 keeps the
# build log quiet; every other namespace file is still stripped.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Python's filesystem abstraction layer"
HOMEPAGE="
	https://github.com/PyFilesystem/pyfilesystem2/
	https://pypi.org/project/fs/
"

LICENSE="MIT"
SLOT="0"
KEYWORDS="~amd64"

RDEPEND="
	dev-python/appdirs[${PYTHON_USEDEP}]
	dev-python/setuptools[${PYTHON_USEDEP}]
	dev-python/six[${PYTHON_USEDEP}]
"

# Uncomment once the hybrid is reported upstream:
# NS_STRIP_ARGS=( --ignore NS110 )

python_compile() {
	distutils-r1_python_compile
	ns-strip_python_compile
}
