# Copyright 2026 ns-strip developers
# Distributed under the terms of the MIT license
# shellcheck shell=bash disable=SC2034

# ns-strip itself, built from its sdist with flit_core.  The eclass is
# installed with it, for an overlay to link or copy into its eclass/.

EAPI=8

DISTUTILS_USE_PEP517=flit
PYTHON_COMPAT=( python3_{11..13} )

inherit distutils-r1 pypi

DESCRIPTION="Detect legacy Python namespace packages and convert them to PEP 420"
HOMEPAGE="https://pypi.org/project/ns-strip/"

LICENSE="MIT"
SLOT="0"
KEYWORDS="~amd64"

RDEPEND="
	dev-python/installer[${PYTHON_USEDEP}]
	dev-python/jinja2[${PYTHON_USEDEP}]
	dev-python/packaging[${PYTHON_USEDEP}]
	dev-python/pyelftools[${PYTHON_USEDEP}]
"

python_install_all() {
	distutils-r1_python_install_all
	insinto /usr/share/ns-strip
	doins eclass-snippets/ns-strip.eclass
}
