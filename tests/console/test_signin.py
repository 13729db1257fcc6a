"""Signing in and out in a real browser; the pages break no rule of their own policy."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.console.conftest import Console, User


def test_a_signed_out_visitor_signs_in_and_lands_where_they_were_going(
    page: Page, console: Console, accessible: Callable[[Page], None]
) -> None:
    user = console.make_user("viewer")
    page.goto("/")
    expect(page).to_have_url(console.url("/console/signin?next=/console/"))
    accessible(page)
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail address or password.")
    expect(page.get_by_label("E-mail address")).to_have_value(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(console.url("/console/"))
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()
    expect(page.get_by_text(f"{user.email} (viewer)")).to_be_visible()
    accessible(page)


def test_signing_out_ends_the_session(
    page: Page, console: Console, sign_in: Callable[[Page, User], None]
) -> None:
    sign_in(page, console.make_user("agent"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    page.goto("/console/")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()


def test_pages_load_their_script_and_style_without_breaking_the_policy(
    page: Page, console: Console, sign_in: Callable[[Page, User], None]
) -> None:
    complaints: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    page.on("console", note)
    sign_in(page, console.make_user("agent"))
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version") == "2.0.11"
    color = page.eval_on_selector("header.top", "e => getComputedStyle(e).borderBottomStyle")
    assert color == "solid"  # the stylesheet applied
    assert complaints == []
