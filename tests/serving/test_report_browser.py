"""The handoff report's HTML in a real browser (Chromium through Playwright): it renders without
console errors, failed requests or uncaught exceptions, its headline cards say what the report
computed, and its inline plots decode. With `LEADSCORE_SCREENSHOT_DIR` set, one test also saves
the page as `handoff-report.png` there (the docs' screenshot)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from leadscore.serving.store.report import HandoffReport, render_html
from tests.services import page_problems, screenshot
from tests.serving.test_report import OUTCOMES, SCENARIO, report_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREENSHOT_ENV = "LEADSCORE_SCREENSHOT_DIR"


def written(report: HandoffReport, path: Path) -> str:
    """Write the report's HTML to `path`; its file:// URL."""
    path.write_text(render_html(report), encoding="utf-8")
    return path.resolve().as_uri()


@contextmanager
def opened(browser: Browser, url: str) -> Iterator[Page]:
    """A page on `url`, loaded (images included), in a context of its own."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def full_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fixed scenario of test_report.py (12 handoffs, 4 of 8 answered accepted) as an
    HTML file, rendered once (its three plots take a second)."""
    return written(report_of(SCENARIO, OUTCOMES), tmp_path_factory.mktemp("html") / "r.html")


def test_report_renders_clean(browser: Browser, full_url: str) -> None:
    assert page_problems(browser, full_url) == []


def test_headline_cards_and_plots(browser: Browser, full_url: str) -> None:
    with opened(browser, full_url) as page:
        titles = page.locator(".card .title").all_inner_texts()
        # the stylesheet upper-cases titles; compare the words
        expected = ["acceptance rate", "time to first action", "leaked", "shared definition",
                    "converted"]  # fmt: skip
        assert [x.lower() for x in titles] == expected
        card = page.locator(".card").nth(0)
        # accepted 1, 2, 7, 10 of the 8 answered (see test_report.py)
        assert card.locator(".value").inner_text() == "50.0%"
        assert "4 of 8 answered handoffs accepted" in card.locator(".detail").inner_text()
        assert card.locator(".bench").inner_text().startswith("vs 44% industry")
        # tiers, predicted vs actual, time to first touch: each an inline PNG that decoded
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
        )
    assert len(images) == 3
    assert all(done and width > 0 and height > 0 for done, width, height in images), images


def test_empty_report_renders_clean(browser: Browser, tmp_path: Path) -> None:
    url = written(report_of([], []), tmp_path / "empty.html")
    assert page_problems(browser, url) == []
    with opened(browser, url) as page:
        assert "No handoffs since 2026-03-01 00:00 UTC" in page.locator(".empty").inner_text()
        assert page.locator("img").count() == 0 and page.locator(".card").count() == 0
        assert page.locator("dl.defs dt").count() > 0  # the definitions are there all the same


def test_screenshot_for_the_docs(browser: Browser, full_url: str) -> None:
    target = os.environ.get(SCREENSHOT_ENV)
    if not target:
        pytest.skip(f"set {SCREENSHOT_ENV}=DIR to save the report's screenshot there")
    path = screenshot(browser, full_url, Path(target) / "handoff-report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
