"""Fixtures for the services some tests need: PostgreSQL and Debian's Chromium.

`.ci/services.sh` installs and starts both and exports the variables read here:
`LEADSCORE_TEST_PG_URL` (a role that may create databases) and `LEADSCORE_CHROMIUM`.
Outside CI a missing service skips the tests that need it, with the reason; in CI
(`CI=true`) it fails them, because CI must run every test.

Loaded by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage

DEFAULT_PG_URL = "postgresql+psycopg://leadscore:leadscore@127.0.0.1:5432/leadscore_test"

# --no-sandbox: Chromium refuses to run as root without it (CI and the dev machines are root).
# The background-networking flags keep Chromium from phoning home: this machine's network is
# closed, and those refused connections would show up as page problems.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

SETUP_HINT = "start it as .ci/run does: `source .ci/services.sh`"


def in_ci() -> bool:
    """Whether this run is CI's (`CI=true`), where every service must be there."""
    return os.environ.get("CI", "").strip().lower() == "true"


def service_missing(reason: str) -> NoReturn:
    """Fail the test in CI, skip it elsewhere; either way with the one-line `reason`."""
    if in_ci():
        pytest.fail(f"{reason} (CI must provide it)", pytrace=False)
    pytest.skip(reason)


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def reachable_pg_url(raw: str) -> str:
    """`raw` once a connection to it works; else fail (CI) or skip, naming the URL and why."""
    url = make_url(raw)
    engine = create_engine(url, connect_args={"connect_timeout": 5}, poolclass=NullPool)
    why = ""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    finally:
        engine.dispose()
    if why:  # outside the except block: the skip/fail then carries no chained traceback
        service_missing(f"PostgreSQL not reachable at {_shown(url)} ({why}): {SETUP_HINT}")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The SQLAlchemy URL of a reachable PostgreSQL role that may create databases."""
    return reachable_pg_url(os.environ.get("LEADSCORE_TEST_PG_URL") or DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def _pg_admin_engine(pg_admin_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the admin URL: CREATE/DROP DATABASE refuse a transaction."""
    engine = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_url: str, _pg_admin_engine: Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards), as a URL."""
    # A unique name: several pytest runs may share one server.
    name = f"lstest_{uuid.uuid4().hex[:16]}"
    with _pg_admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: the code under test may still hold pooled connections to it.
        with _pg_admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store's SQLAlchemy URL; a test using it runs once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url: str = request.getfixturevalue("pg_url")
    return url


def chromium_executable() -> str:
    """Debian's Chromium: `LEADSCORE_CHROMIUM`, else `chromium` on the PATH; else fail or skip."""
    path = os.environ.get("LEADSCORE_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).is_file():
        where = path or "`chromium` on the PATH"
        service_missing(
            f"Chromium not found at {where} (set LEADSCORE_CHROMIUM or `apt-get install "
            f"chromium`): {SETUP_HINT}"
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's, driven by Playwright), shared by the tests of one module.

    Module scope, not session: while Playwright's sync API is alive it marks an asyncio loop
    as running in the main thread, so `asyncio.run()` (or anything that runs a loop there)
    fails. Closing the browser at the end of the module keeps that to the modules that ask
    for it, instead of every test that happens to run after the first browser test.
    """
    path = chromium_executable()
    # Imported here: Playwright takes a quarter second to import, and most runs need no browser.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield launched
        finally:
            launched.close()


def page_problems(browser: Browser, url: str) -> list[str]:
    """What goes wrong while `url` loads: console errors, uncaught exceptions, failed requests.

    Empty means a clean page. Each entry is one line naming its kind; a page that does not
    load at all is reported too ("navigation failed: ..."), not raised.
    """
    from playwright.sync_api import Error as PlaywrightError

    problems: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                problems.append(f"console error: {msg.text}")

        page.on("console", on_console)
        page.on(
            "pageerror",
            lambda exc: problems.append(
                f"uncaught exception: {': '.join(p for p in (exc.name, exc.message) if p)}"
            ),
        )
        page.on(
            "requestfailed",
            lambda req: problems.append(f"request failed: {req.url} ({req.failure})"),
        )
        try:
            response = page.goto(url, wait_until="load")
        except PlaywrightError as exc:
            # The page itself did not load (nothing listening, no such file): a problem to
            # report like the others, not a crash of the helper.
            problems.append(f"navigation failed: {exc.message.splitlines()[0]}")
        else:
            if response is not None and not response.ok:
                problems.append(f"HTTP {response.status}: {url}")
    finally:
        context.close()
    return problems


def screenshot(browser: Browser, url: str, path: Path | str, full_page: bool = True) -> Path:
    """Save a PNG of `url` once loaded to `path` (the whole page unless `full_page` is off)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.screenshot(path=str(out), full_page=full_page)
    finally:
        context.close()
    return out
