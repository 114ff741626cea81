"""End to end: the PWS dashboard in a real browser, against gunicorn on loopback.

The small demo district is loaded into a fresh SQLite database (``ilp db upgrade``, then
``ilp demo load --preset small``) and gunicorn serves it with ILP_AUTH off.  Playwright drives
Debian's chromium (``/usr/bin/chromium``; no browser is downloaded).  Checked: the overview lists
every desa of the district, and each desa's stunting numerator/denominator equal the
MeasureReport of ``$evaluate-measure`` for its ilp-wilayah Location; sorting by stunting (and
reversing); drilling down desa -> Posyandu -> children at risk, each with a z-score below -2;
the English switch; and the overview on a 360 px phone screen has no horizontal overflow.  The
overview at 1280x900 is saved as docs/img/dashboard.png (README.md shows it).  See
docs/dashboard.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ILP, ROOT, _environment, _free_port, gunicorn

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
MONTH = "2026-10"  # the demo's last month
WILAYAH = "https://fhir.ilp-gateway.id/StructureDefinition/ilp-wilayah"
ADMINISTRATIVE_CODE = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
SCREENSHOT = ROOT / "docs" / "img" / "dashboard.png"
STUNTING = 'td[data-indicator="stunting"]'


def _ilp(env, *args):
    answer = subprocess.run(
        [str(ILP), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert answer.returncode == 0, f"ilp {' '.join(args)} failed:\n{answer.stderr}"


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """The origin (http://127.0.0.1:port) of gunicorn serving the small demo district."""
    database = tmp_path_factory.mktemp("e2e-dashboard") / "ilp.sqlite3"
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = _environment(f"sqlite:///{database}", f"{origin}/fhir")
    _ilp(env, "db", "upgrade")
    _ilp(env, "demo", "load", "--preset", "small")
    log_path = database.with_name("gunicorn.log")
    with gunicorn(env, port, log_path, f"{origin}/fhir/metadata"):
        yield origin


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright; a missing browser fails the test (never skips)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard browser test needs Debian's chromium "
            "(apt-get install chromium); Playwright's own browsers are not used"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _desa_locations(origin):
    """Kemendagri desa code -> id of its ilp-wilayah Location, as the FHIR API tells it."""
    answer = requests.get(
        f"{origin}/fhir/Location", params={"_profile": WILAYAH, "_count": "200"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert not [link for link in bundle.get("link", []) if link["relation"] == "next"]
    found = {}
    for entry in bundle.get("entry", []):
        location = entry["resource"]
        assert WILAYAH in location["meta"]["profile"]
        for extension in location.get("address", {}).get("extension", []):
            if extension["url"] != ADMINISTRATIVE_CODE:
                continue
            village = [e["valueCode"] for e in extension["extension"] if e["url"] == "village"]
            if village:
                found[village[0]] = location["id"]
    return found


def _stunting_report(origin, location_id):
    answer = requests.get(
        f"{origin}/fhir/Measure/stunting/$evaluate-measure",
        params={
            "periodStart": f"{MONTH}-01",
            "periodEnd": f"{MONTH}-31",
            "subject": f"Location/{location_id}",
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["resourceType"] == "MeasureReport", report
    assert report["subject"]["reference"] == f"Location/{location_id}"
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    return counts["numerator"], counts["denominator"]


def _rows(page):
    """(area code, stunting numerator, stunting denominator) of each body row, in order."""
    return page.eval_on_selector_all(
        "table#indicators tbody tr",
        """rows => rows.map(row => {
            const cell = row.querySelector('td[data-indicator="stunting"]');
            return [row.dataset.area, cell.dataset.numerator, cell.dataset.denominator];
        })""",
    )


def _rate(numerator, denominator):
    return int(numerator) / int(denominator) if denominator and int(denominator) else None


def _assert_sorted(rows, descending):
    rates = [_rate(n, d) for _, n, d in rows]
    valued = [r for r in rates if r is not None]
    assert rates == valued + [None] * (len(rates) - len(valued)), "empty areas must come last"
    assert valued == sorted(valued, reverse=descending), (descending, rates)
    return valued


def _z(text):
    text = text.strip().replace("\u2212", "-").replace(",", ".")  # z-scores: no thousands
    return None if text in ("", "-") else float(text)


def test_overview_matches_measure_reports_sorts_and_fits(origin, page):
    page.goto(f"{origin}/dashboard?month={MONTH}")
    assert page.locator("table#indicators").is_visible()

    # Every desa, and its stunting counts are those of $evaluate-measure for its Location.
    locations = _desa_locations(origin)
    assert len(locations) >= 2, locations
    rows = _rows(page)
    assert sorted(code for code, _, _ in rows) == sorted(locations)
    for code, numerator, denominator in rows:
        link = page.locator(f'tr[data-area="{code}"] a.area-link')
        assert link.get_attribute("href").split("?")[0] == f"/dashboard/desa/{code}"
        expected = _stunting_report(origin, locations[code])
        assert (int(numerator), int(denominator or 0)) == expected, code
    assert any(int(n) for _, n, _ in rows), "the demo district has stunted children"

    # Sorting by stunting, then the same link again reverses it.
    page.click('table#indicators a.sort[data-indicator="stunting"]')
    page.wait_for_selector('table#indicators[data-sort="stunting"]')
    first_dir = page.get_attribute("table#indicators", "data-dir")
    first = _assert_sorted(_rows(page), descending=first_dir == "desc")
    page.click('table#indicators a.sort[data-indicator="stunting"]')
    second_dir = "asc" if first_dir == "desc" else "desc"
    page.wait_for_selector(f'table#indicators[data-sort="stunting"][data-dir="{second_dir}"]')
    second = _assert_sorted(_rows(page), descending=second_dir == "desc")
    assert second == first[::-1]

    # The screenshot of the README, then the same page on a 360 px phone screen.
    page.goto(f"{origin}/dashboard?month={MONTH}")
    assert page.locator("table#indicators tbody tr").count() == len(locations)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{origin}/dashboard?month={MONTH}")
    assert page.locator("table#indicators").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360 + 1, f"the page is {width} px wide on a 360 px screen"


def test_drill_down_to_children_at_risk_and_language(origin, page):
    page.goto(f"{origin}/dashboard?month={MONTH}&sort=stunting&dir=desc")
    assert page.locator("html").get_attribute("lang") == "id"
    assert page.locator("h1").inner_text().startswith("Dasbor PWS")

    # The desa with the most stunted children, then its Posyandu with the most.
    top = page.locator("table#indicators tbody tr").first
    code = top.get_attribute("data-area")
    assert int(top.locator(STUNTING).get_attribute("data-numerator")) > 0
    top.locator("a.area-link").click()
    page.wait_for_url(f"**/dashboard/desa/{code}*")
    # One row per Posyandu, each a link; "(tanpa Posyandu)" (nobody's Posyandu) has no code.
    posyandu = page.locator('table#indicators tbody tr:not([data-area=""])')
    assert posyandu.count() >= 1, "the desa page lists its Posyandu"
    links = page.locator("table#indicators tbody a.area-link")
    assert links.count() == posyandu.count()
    for href in links.evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        assert href.startswith("/dashboard/posyandu/"), href
    page.click('table#indicators a.sort[data-indicator="stunting"]')
    page.wait_for_selector('table#indicators[data-sort="stunting"][data-dir="desc"]')
    page.locator("table#indicators tbody a.area-link").first.click()
    page.wait_for_url("**/dashboard/posyandu/*")

    children = page.locator("table#children tbody tr")
    assert children.count() >= 1, page.locator("main").inner_text()
    for index in range(children.count()):
        child = children.nth(index)
        scores = [_z(t) for t in child.locator("td[data-z]").all_inner_texts()]
        assert any(s is not None and s < -2 for s in scores), (index, scores)

    # English: the switch at the top right.
    page.goto(f"{origin}/dashboard?month={MONTH}")
    page.click("#language")
    page.wait_for_selector('html[lang="en"]')
    assert page.locator("h1").inner_text().startswith("PWS dashboard")
    assert page.locator("#table-heading").inner_text().startswith("Indicators by area")
    assert page.locator("#language").inner_text() == "Bahasa Indonesia"
