"""The adversarial suite: attacks on the command line as an attacker would make them.

The shared helpers of tests/ (nstree, wheelbuild, ext_toolchain) and of this folder (hostile)
are importable from here as plain modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent.parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))
