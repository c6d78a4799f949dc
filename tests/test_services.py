"""The service fixtures do what they claim: a store per backend, a fresh PostgreSQL database per
test, skip outside CI and fail in CI when a service is missing, and a browser that reports a
page's problems and takes screenshots."""

from __future__ import annotations

import struct
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.services import (
    chromium_executable,
    in_ci,
    page_problems,
    reachable_pg_url,
    screenshot,
    service_missing,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]


def test_a_store_url_keeps_a_row(store_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.id  # "sqlite" or "postgresql"
    engine = create_engine(store_url)
    try:
        assert engine.dialect.name == backend
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE leads (lead_id TEXT PRIMARY KEY, score REAL)"))
            conn.execute(text("INSERT INTO leads VALUES ('lead_1', 0.25)"))
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT lead_id, score FROM leads")).all()
        assert [tuple(r) for r in rows] == [("lead_1", 0.25)]
    finally:
        engine.dispose()


# The names of the databases the runs below were given, in the order they ran.
_SEEN_DATABASES: list[str] = []


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_its_own_empty_database(run: int, pg_url: str, pg_admin_url: str) -> None:
    engine = create_engine(pg_url)
    name = engine.url.database
    assert name is not None
    try:
        # Empty: the first run leaves a table behind; the second must not see it.
        assert inspect(engine).get_table_names() == []
        assert name not in _SEEN_DATABASES
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE leftover (x INTEGER)"))
    finally:
        engine.dispose()
    admin = create_engine(pg_admin_url)
    try:
        with admin.connect() as conn:
            existing = set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        admin.dispose()
    assert name in existing
    # An earlier run's database was dropped when that test ended.
    assert not existing & set(_SEEN_DATABASES)
    _SEEN_DATABASES.append(name)


def test_the_postgresql_server_is_15_or_newer(pg_admin_url: str) -> None:
    # In CI this cannot skip: pg_admin_url fails there when the server does not answer.
    engine = create_engine(pg_admin_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar_one()
            number = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")
    assert number >= 150000


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", None)], ids=["ci", "not-ci"]
)
def test_an_unreachable_server_fails_in_ci_and_skips_elsewhere(
    ci: str, outcome: type[BaseException] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", ci)
    expected = outcome or pytest.skip.Exception
    # Port 1 on the loopback: nothing listens there, the connection is refused at once.
    with pytest.raises(expected) as caught:
        reachable_pg_url("postgresql+psycopg://who:secret@127.0.0.1:1/nothing")
    message = str(caught.value)
    assert message.startswith(
        "PostgreSQL not reachable at postgresql+psycopg://who:***@127.0.0.1:1"
    )
    assert "secret" not in message
    assert "source .ci/services.sh" in message
    assert message.endswith("(CI must provide it)") == (ci == "true")


def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "no-chromium"
    monkeypatch.setenv("LEADSCORE_CHROMIUM", str(absent))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"Chromium not found at {absent}"):
        chromium_executable()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="set LEADSCORE_CHROMIUM"):
        chromium_executable()


def test_ci_is_only_the_exact_word_true(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("true", True), ("TRUE", True), ("1", False), ("false", False)]:
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected
    monkeypatch.delenv("CI")
    assert in_ci() is False
    with pytest.raises(pytest.skip.Exception, match=r"^why$"):
        service_missing("why")


def _html(tmp_path: Path, name: str, body: str, body_style: str = "") -> str:
    page = tmp_path / name
    page.write_text(
        "<!doctype html><html><head><title>t</title></head>"
        f'<body style="{body_style}">{body}</body></html>'
    )
    return page.as_uri()


def test_a_clean_page_has_no_problems(browser: Browser, tmp_path: Path) -> None:
    url = _html(tmp_path, "clean.html", "<p>fine</p><script>console.log('hello')</script>")
    assert page_problems(browser, url) == []


def test_console_errors_and_uncaught_exceptions_are_reported(
    browser: Browser, tmp_path: Path
) -> None:
    body = '<script>console.error("x")</script><script>throw new Error("boom")</script>'
    problems = page_problems(browser, _html(tmp_path, "broken.html", body))
    assert len(problems) == 2, problems
    assert problems[0] == "console error: x"
    assert problems[1] == "uncaught exception: Error: boom"


def test_a_failed_request_is_reported(browser: Browser, tmp_path: Path) -> None:
    problems = page_problems(browser, _html(tmp_path, "img.html", '<img src="missing.png">'))
    missing = (tmp_path / "missing.png").as_uri()
    assert any(p.startswith(f"request failed: {missing} ") for p in problems), problems


def test_a_page_that_does_not_load_is_a_problem_not_a_crash(
    browser: Browser, tmp_path: Path
) -> None:
    absent = (tmp_path / "absent.html").as_uri()
    problems = page_problems(browser, absent)
    assert f"request failed: {absent} (net::ERR_FILE_NOT_FOUND)" in problems
    assert any(p.startswith("navigation failed: ") for p in problems), problems


def test_a_screenshot_is_a_png_of_the_whole_page(browser: Browser, tmp_path: Path) -> None:
    # 2000 px of content under the default 1280x720 viewport: a full-page shot is 1280x2000.
    tall = '<div style="height:2000px;background:#36c"></div>'
    url = _html(tmp_path, "tall.html", tall, body_style="margin:0")
    out = screenshot(browser, url, tmp_path / "shots" / "tall.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    assert (width, height) == (1280, 2000)


@pytest.mark.slow
def test_the_browser_leaves_asyncio_usable_for_later_modules(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While Playwright's sync API is alive the main thread looks as if an asyncio loop ran;
    # the browser fixture ends with its module so that later modules can run loops again.
    pytester.makepyfile(
        test_a_browser=textwrap.dedent(
            """
            def test_uses_it(browser):
                assert browser.is_connected()
            """
        ),
        test_b_asyncio=textwrap.dedent(
            """
            import asyncio

            def test_runs_a_loop():
                assert asyncio.run(asyncio.sleep(0, result=7)) == 7
            """
        ),
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("LEADSCORE_CHROMIUM", chromium_executable())
    result = pytester.runpytest_subprocess("-p", "tests.services", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
