"""The public URL of links in outgoing mail: configured in production, loopback on a laptop."""

from __future__ import annotations

import pytest

from crm_core.config import DEFAULT_PUBLIC_URL, MissingSettingError, Settings


def test_a_configured_url_is_used_as_is() -> None:
    settings = Settings(public_url="https://crm.example.com", database_url="postgresql://db/crm")
    assert settings.resolved_public_url() == "https://crm.example.com"


def test_a_real_database_without_a_public_url_is_refused() -> None:
    settings = Settings(public_url="", database_url="postgresql+psycopg://db/crm")
    with pytest.raises(MissingSettingError, match="CRM_PUBLIC_URL must be set"):
        settings.resolved_public_url()


def test_the_embedded_default_is_loopback() -> None:
    settings = Settings(public_url="", database_url="")
    assert settings.resolved_public_url() == DEFAULT_PUBLIC_URL == "http://127.0.0.1:5000"
