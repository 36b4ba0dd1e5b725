"""The command line's general contract."""

from __future__ import annotations

import subprocess
import sys

import mailcore


def test_version_flag_prints_the_package_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mailcore", "--version"], capture_output=True, check=True
    )
    assert proc.stdout.decode().strip() == f"mailcore {mailcore.__version__}"
    assert mailcore.__version__ != "0.0.0"
