"""The emulator's page in headless Chromium, in front of `gatekeeper serve`: what a person sees
and does in Slack, from the card to the modal, the Home tab and the composer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from bot.domain.candidates import Candidate, parse_bundle
from bot.emulator import Person, SlackEmulator
from bot.emulator.records import Content
from bot.services.candidates import Champion, propose
from handlers.blocks import Action
from tests.e2e.conftest import CHANNEL, LEAD, OUTSIDER, REQUESTER, SRE, Bot

IMAGE = "127.0.0.1:5000/stg/churn-serving@sha256:" + "ab" * 32
PEOPLE = [
    Person(REQUESTER, "dana", "requester"),
    Person(LEAD, "lea", "approver"),
    Person(SRE, "sam", "approver"),
    Person(OUTSIDER, "ovid", "outsider"),
]


def _propose(bot: Bot) -> str:
    """A candidate for production, as the tests of the Slack interface make one; its card's ts."""
    gatekeeper = bot.gatekeeper
    candidate = Candidate(
        "churn-classifier", "7", "staging", "production", {"accuracy": 0.93},
        parse_bundle({"gatekeeper.image.serving": IMAGE}), requester=REQUESTER,
    )  # fmt: skip
    propose(
        gatekeeper.unit_of_work, gatekeeper.policy_for, gatekeeper.notifier, candidate,
        Champion("5", {"accuracy": 0.925}), actor=REQUESTER, now=gatekeeper.now(),
    )  # fmt: skip
    cards = bot.slack.wait_for(
        lambda ws: [m for m in ws.messages(CHANNEL) if m.content.blocks], timeout=10
    )
    return cards[0].ts


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], "the page must never open a browser dialog"


def _act_as(page: Page, user: str) -> None:
    page.get_by_test_id("user-switcher").select_option(user)
    expect(page.get_by_test_id("user-switcher")).to_have_value(user)


def _press(card: Locator, action: str) -> None:
    card.locator(f'button[data-action-id="{action}"]').click()


def test_a_person_reviews_votes_and_rejects_from_the_page(
    bot: Bot, page: Page, artifacts: Path
) -> None:
    ts = _propose(bot)
    url = bot.slack.open_page(request_url=f"{bot.url}/slack/events", people=PEOPLE, channel=CHANNEL)
    page.goto(url)

    # The card, as an approver reads it.
    card = page.locator(f'[data-testid="message"][data-ts="{ts}"]')
    expect(card.locator(".bk-header-text")).to_have_text("churn-classifier v7")
    expect(card.locator(".bk-field")).to_have_count(4)
    expect(card.locator(".bk-field").first).to_contain_text("Promotion")
    expect(card.locator(".bk-field b").first).to_have_text("Promotion")  # *bold* as bold
    expect(card.locator(".mention").first).to_have_text("@dana")  # <@U…> as @name
    expect(card.get_by_role("button")).to_have_text(["Approve", "Reject", "Details"])
    expect(card.locator(f'[data-action-id="{Action.APPROVE}"]')).to_have_class(
        "bk-button bk-button-primary"
    )
    expect(card.locator(f'[data-action-id="{Action.REJECT}"]')).to_have_class(
        "bk-button bk-button-danger"
    )
    expect(page.get_by_test_id("user-switcher").locator("option")).to_have_text(
        ["dana (requester)", "lea (approver)", "sam (approver)", "ovid (outsider)"]
    )
    page.screenshot(path=artifacts / "1-card.png")
    page.evaluate("window.notReloaded = true")

    # An approver approves: Slack asks first (production), then the card changes in place.
    _act_as(page, LEAD)
    _press(card, Action.APPROVE)
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_contain_text("Approve for production?")
    page.screenshot(path=artifacts / "2-confirm.png")
    dialog.get_by_test_id("confirm-yes").click()
    expect(card).to_contain_text("1 of 2")
    expect(page.get_by_test_id("confirm-dialog")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=artifacts / "3-approved-once.png")

    # The outsider is refused, and only the outsider sees why.
    _act_as(page, OUTSIDER)
    _press(card, Action.APPROVE)
    page.get_by_test_id("confirm-yes").click()
    refusal = page.get_by_test_id("ephemeral").filter(has_text="may vote")
    expect(refusal).to_contain_text("Only visible to you")
    page.screenshot(path=artifacts / "4-outsider-refused.png")
    _act_as(page, LEAD)
    expect(page.get_by_test_id("ephemeral").filter(has_text="may vote")).to_have_count(0)
    expect(card).to_contain_text("1 of 2")

    # The outsider's rejection: the bot's own validation error appears under the reason.
    _act_as(page, OUTSIDER)
    _press(card, Action.REJECT)
    modal = page.get_by_test_id("modal")
    expect(modal.get_by_test_id("modal-title")).to_have_text("Reject candidate")
    modal.locator("textarea").fill("nope")
    modal.get_by_test_id("modal-submit").click()
    expect(modal.get_by_test_id("input-error")).to_contain_text("may vote")
    expect(modal.locator("textarea")).to_have_value("nope")
    modal.get_by_test_id("modal-submit").click()  # the same answer again is shown again
    expect(modal.get_by_test_id("input-error")).to_contain_text("may vote")
    page.screenshot(path=artifacts / "5-bot-validation-error.png")
    modal.get_by_test_id("modal-close").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)

    # An approver rejects: an empty reason is stopped as Slack stops it, a reason goes through.
    _act_as(page, SRE)
    _press(card, Action.REJECT)
    modal = page.get_by_test_id("modal")
    modal.get_by_test_id("modal-submit").click()
    expect(modal.get_by_test_id("input-error")).to_have_text("Please complete this required field.")
    page.screenshot(path=artifacts / "6-empty-reason.png")
    modal.locator("textarea").fill("latency <b>regressed</b> & p95 > 1s")
    modal.get_by_test_id("modal-submit").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(card).to_contain_text("Rejected by @sam: latency <b>regressed</b> & p95 > 1s")
    expect(card.locator(f'[data-action-id="{Action.APPROVE}"]')).to_have_count(0)
    page.screenshot(path=artifacts / "7-rejected.png")

    # The thread holds the decision.
    card.get_by_test_id("replies").click()
    thread = page.get_by_test_id("thread-pane")
    expect(thread).to_contain_text("latency <b>regressed</b>")
    page.screenshot(path=artifacts / "8-thread.png")
    assert page.evaluate("window.notReloaded") is True

    # The Home tab.
    page.get_by_test_id("nav-home").click()
    home = page.get_by_test_id("home-tab")
    expect(home.locator(".bk-header-text")).to_have_text("🚦 Gatekeeper")
    expect(home).to_contain_text("Waiting for you")
    expect(page.get_by_test_id("home-empty")).to_be_hidden()
    page.screenshot(path=artifacts / "9-home.png")

    # The composer: slash commands reach the bot, and its answer is for the typist alone.
    page.get_by_test_id(f"channel-{CHANNEL}").click()
    composer = page.get_by_test_id("composer")
    composer.fill("hello bot")
    composer.press("Enter")
    expect(page.get_by_test_id("composer-notice")).to_contain_text("Only slash commands")
    composer.fill("/promote help")
    composer.press("Enter")
    answer = page.get_by_test_id("ephemeral").filter(has_text="/promote plan")
    expect(answer).to_contain_text("Only visible to you")
    expect(composer).to_have_value("")
    page.screenshot(path=artifacts / "10-promote-help.png")


HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def test_text_from_anyone_is_shown_never_run(browser: Browser, artifacts: Path) -> None:
    with SlackEmulator() as slack:
        slack.workspace.add_channel(CHANNEL, "ml-models")
        slack.workspace.add_user(LEAD, '<img src=x onerror="window.pwned = 3">')
        escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": HOSTILE}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escaped}* <javascript:alert(1)|x>"}},
            {"type": "actions", "elements": [{
                "type": "button", "action_id": '"><script>window.pwned=4</script>',
                "text": {"type": "plain_text", "text": HOSTILE},
                "confirm": {"title": {"type": "plain_text", "text": HOSTILE},
                            "text": {"type": "mrkdwn", "text": escaped},
                            "confirm": {"type": "plain_text", "text": "Yes"},
                            "deny": {"type": "plain_text", "text": "No"}},
            }]},
        ]  # fmt: skip
        slack.workspace.post(CHANNEL, Content(HOSTILE, blocks))
        slack.workspace.post(CHANNEL, Content(f"{escaped} {HOSTILE}"), user=LEAD)
        url = slack.open_page(
            request_url="http://127.0.0.1:9/slack/events",
            people=[Person(LEAD, "lea", "approver")],
            channel=CHANNEL,
        )
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        messages = page.get_by_test_id("message")
        expect(messages).to_have_count(2)
        expect(messages.first.locator(".bk-header-text")).to_have_text(HOSTILE)
        expect(messages.first.locator(".bk-section b")).to_have_text(HOSTILE)
        expect(messages.nth(1)).to_contain_text(f"{HOSTILE} <script>")
        messages.first.get_by_role("button").click()
        expect(page.get_by_test_id("confirm-dialog")).to_contain_text(HOSTILE)
        page.get_by_test_id("confirm-no").click()
        page.screenshot(path=artifacts / "hostile-text.png")
        assert page.evaluate("window.pwned") is None
        assert page.locator("script").count() == 1  # the page's own
        assert page.locator("[onerror]").count() == 0
        assert page.locator('a[href^="javascript"]').count() == 0
        context.close()
