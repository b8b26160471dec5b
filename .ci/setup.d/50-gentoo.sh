# shellcheck shell=bash
# Set-up for the Gentoo tests (tests/test_portage_e2e.py): real Portage and pkgcheck from
# PyPI, and what Gentoo's distutils-r1 runs at build time, pinned, into the CI venv
# ($NS_STRIP_VENV, first on PATH); the sdists the ebuilds build are fetched, hash-checked, by
# the tests into $NS_STRIP_DISTFILES.  Gentoo's eclasses are read from ../shared/gentoo/eclass.
python3 -m pip install -q \
	"portage==3.0.83" \
	"gpep517==23" \
	"flit_core==4.2.0" \
	"setuptools-scm==8.3.1" \
	"pkgcheck==0.10.37" "pkgcore==0.12.30" "snakeoil==0.10.11"
export NS_STRIP_DISTFILES=${NS_STRIP_DISTFILES:-/tmp/ns-strip-distfiles}
mkdir -p "${NS_STRIP_DISTFILES}"
