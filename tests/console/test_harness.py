"""The harness itself: the accessibility check fails on a page that deserves it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.console.conftest import check_accessibility


def test_the_accessibility_check_fails_on_serious_violations(page: Page) -> None:
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main>'
        '<input type="text"><img src="x.png"><button></button></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        check_accessibility(page)
    message = str(failed.value)
    assert "label" in message
    assert "image-alt" in message
    assert "button-name" in message
