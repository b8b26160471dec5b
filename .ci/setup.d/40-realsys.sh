# Real-package integration suite (issue 12): download the pinned PyPI wheels (pip, hashes
# checked) and Debian packages (apt-get download, nothing installed) into the test cache once,
# so a network problem shows here, before the tests. About 12 MB.
python3 tests/realpkgs.py
