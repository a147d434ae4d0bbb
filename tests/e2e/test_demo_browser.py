"""The demo in headless Chromium, as a team would use it: the candidate card with its metrics
and verdict, an outsider refused, two approvals, the promotion in the thread, and a rollback
that gives staging its champion back. Each stage is kept as a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from bot.demo.team import LEAD, MODEL, OUTSIDER, SRE
from tests.browser import ROOT
from tests.e2e.test_demo import RunningDemo, running_demo

README_SCREENSHOT = ROOT / "deploy" / "screenshots" / "demo.png"
#: Promoting the challenger copies its model and image and rebuilds its pipeline with kfp.local.
PROMOTION_MS = 120_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    with running_demo(tmp_path_factory.mktemp("demo-browser") / "gatekeeper-demo") as running:
        yield running


def _card(page: Page, version: str) -> Locator:
    header = page.locator(".bk-header-text", has_text=f"{MODEL} v{version}")
    return page.get_by_test_id("messages").get_by_test_id("message").filter(has=header)


def _act_as(page: Page, user_id: str) -> None:
    page.get_by_test_id("user-switcher").select_option(user_id)


def _press(page: Page, card: Locator, label: str) -> None:
    card.get_by_test_id("button").filter(has_text=label).first.click()
    confirm = page.get_by_test_id("confirm-yes")
    # A press that would hurt if mistaken asks first; answer yes when it does.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if confirm.is_visible():
            confirm.click()
            return
        time.sleep(0.1)


def test_approve_promote_and_roll_back_from_the_page(
    demo: RunningDemo,
    browser: Browser,
    artifacts: Path,
) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(demo.url)

    # The candidate card: its metrics against the champion, and the policy's verdict.
    card = _card(page, "2")
    expect(card).to_be_visible(timeout=15_000)
    expect(card).to_contain_text("accuracy")
    expect(card).to_contain_text("0.98")
    expect(card).to_contain_text("pending")
    expect(card.get_by_test_id("button").filter(has_text="Approve")).to_be_visible()
    page.screenshot(path=artifacts / "1-candidate.png", full_page=True)

    # An outsider's press is refused, told why (only to them), and counts for nothing.
    _act_as(page, OUTSIDER.user_id)
    _press(page, card, "Approve")
    refusal = page.get_by_test_id("ephemeral").last
    expect(refusal).to_contain_text("only @ml-leads, @sam may vote", timeout=15_000)
    page.screenshot(path=artifacts / "2-outsider-refused.png", full_page=True)
    assert demo.query("SELECT count(*) FROM votes")[0][0] == 0

    # Two approvers: lea through @ml-leads, then sam.
    _act_as(page, LEAD.user_id)
    _press(page, card, "Approve")
    expect(card).to_contain_text("lea", timeout=15_000)
    page.screenshot(path=artifacts / "3-first-approval.png", full_page=True)
    _act_as(page, SRE.user_id)
    _press(page, card, "Approve")

    # The promotion runs; the card changes and the thread tells each step.
    expect(card).to_contain_text("promoted", timeout=PROMOTION_MS)
    expect(card.get_by_test_id("button").filter(has_text="Roll back")).to_be_visible()
    card.get_by_test_id("replies").click()
    thread = page.get_by_test_id("thread-items")
    expect(thread).to_contain_text("promoted", timeout=15_000)
    page.screenshot(path=artifacts / "4-promoted.png", full_page=False)
    if os.environ.get("GATEKEEPER_UPDATE_README_SCREENSHOT"):  # refreshed on purpose, not by CI
        shutil.copyfile(artifacts / "4-promoted.png", README_SCREENSHOT)
    staging = demo.mlflow("staging")
    promoted = staging.get_model_version_by_alias(MODEL, "champion").version
    assert promoted != "1"

    # sam rolls back: staging's champion is v1 again.
    _press(page, card, "Roll back")
    expect(card).to_contain_text(re.compile(r"rolled.back"), timeout=60_000)
    page.screenshot(path=artifacts / "5-rolled-back.png", full_page=True)
    assert staging.get_model_version_by_alias(MODEL, "champion").version == "1"
    context.close()
