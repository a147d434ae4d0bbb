"""Headless Chromium for tests of the emulator's page: Debian's `chromium`, driven by Playwright.

Playwright's own browser downloads are never used (`playwright install` cannot run here); the
system's Chromium is launched by path. Screenshots go under GATEKEEPER_TEST_ARTIFACTS
(default `test-artifacts/` at the repository's root).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NO_CHROMIUM = "needs Debian's chromium on PATH (apt-get install chromium, or `make system`)"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(NO_CHROMIUM)
        pytest.skip(NO_CHROMIUM)
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One Chromium per test module; each test opens its own context and page.

    Not per session: Playwright's sync API keeps an event loop running on the main thread
    while it is open, and later tests that call ``asyncio.run`` would find it there."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield launched
        launched.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go: one directory per test."""
    base = Path(os.environ.get("GATEKEEPER_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    where = base / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    where.mkdir(parents=True, exist_ok=True)
    return where
