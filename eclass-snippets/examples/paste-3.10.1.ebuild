# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# Example: a hybrid.  paste/__init__.py declares the namespace and then
# runs more code (it registers the namespace's directories with
# modulefinder), so removing the file would lose that code: "no good
# solution has been found" in Gentoo's Python guide.  ns-strip keeps the
# file and says why, naming the blocking line, e.g.:
#	* NS110 paste/__init__.py: hybrid pkg_resources-style namespace paste:
#	  kept, stripping is blocked by line 7: try: … [Paste]
# Once the maintainer has reported it upstream, --ignore NS110 keeps the
# build log quiet; every other namespace file is still stripped.

EAPI=8

DISTUTILS_USE_PEP517=setuptools
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 ns-strip pypi

DESCRIPTION="Tools for using a Web Server Gateway Interface stack"
HOMEPAGE="https://github.com/pasteorg/paste"

LICENSE="MIT"
SLOT="0"
KEYWORDS="~amd64"

# Uncomment once the hybrid is reported upstream:
# NS_STRIP_ARGS=( --ignore NS110 )

python_compile() {
	distutils-r1_python_compile
	ns-strip_python_compile
}
