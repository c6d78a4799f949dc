"""The quarterly review's HTML in a real browser (Chromium through Playwright): it renders without
console errors, failed requests or uncaught exceptions, its headline says what the JSON says,
and its inline plots decode. The review is the constructed one of test_review.py (every section,
no model trained). With `LEADSCORE_SCREENSHOT_DIR` set, one test also saves the page as
`quarterly-review.png` there (the docs' screenshot)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from leadscore.training.review_report import render_html
from tests.services import page_problems, screenshot
from tests.training.test_review import constructed_review

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SCREENSHOT_ENV = "LEADSCORE_SCREENSHOT_DIR"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The review's page (its file:// URL) and its JSON, rendered once."""
    review = constructed_review()
    path = tmp_path_factory.mktemp("review") / "review.html"
    path.write_text(render_html(review), encoding="utf-8")
    return path.resolve().as_uri(), json.loads(json.dumps(review.to_dict(), allow_nan=False))


def test_review_renders_clean(browser: Browser, written: tuple[str, dict[str, Any]]) -> None:
    assert page_problems(browser, written[0]) == []


def test_headline_says_what_the_json_says(
    browser: Browser, written: tuple[str, dict[str, Any]]
) -> None:
    url, data = written
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        # text_content, not inner_text: the stylesheet capitalises the action
        assert page.locator("#action").text_content() == data["headline"]["action"]
        assert page.locator("#recommendation").text_content() == data["headline"]["recommendation"]
        top = page.locator("#drift tr").nth(1).locator("td").first.text_content()
        assert top == data["drift"][0]["feature"]
        assert page.locator("#gate").text_content() == "passes"
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
        )
    finally:
        context.close()
    # drift, calibration, tiers: each an inline PNG that decoded
    assert len(images) == 3
    assert all(done and width > 0 and height > 0 for done, width, height in images), images


def test_screenshot_for_the_docs(browser: Browser, written: tuple[str, dict[str, Any]]) -> None:
    target = os.environ.get(SCREENSHOT_ENV)
    if not target:
        pytest.skip(f"set {SCREENSHOT_ENV}=DIR to save the review's screenshot there")
    path = screenshot(browser, written[0], Path(target) / "quarterly-review.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
