"""The key secrets at rest are encrypted under in tests.

Set in the environment before any test runs, so the Settings that tests build,
and every process a test starts, use the same key as the test engines.
"""

from __future__ import annotations

import os

from crm_core.encryption.keyring import Keyring

TEST_ENCRYPTION_KEYS = os.environ.setdefault("CRM_ENCRYPTION_KEYS", Keyring.generate_key())
TEST_KEYRING = Keyring(TEST_ENCRYPTION_KEYS.split(","))
