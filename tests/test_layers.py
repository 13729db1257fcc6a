"""The layer contracts in pyproject.toml hold: crm_core imports no web or queue code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import REPO


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
