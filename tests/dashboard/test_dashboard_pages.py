"""The PWS dashboard (/dashboard) on the small demo district, loaded through the service layer.

Pages are read as a user reads them (the table, its links, the CSV) and compared with what
``services.indicators`` computes for the same month and area.  SQLite only: the numbers come
from the services, whose own tests run on both databases.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from server import create_app
from server.config import Settings
from server.demo.district import PRESETS, generate
from server.http import dashboard_report as report
from server.http.dashboard import CSP
from server.http.dashboard_i18n import TEXT, Words
from server.services import clients, demo, indicators, resources
from server.services.context import ServiceContext
from server.services.indicators.catalogue import BY_CODE, INDICATORS
from server.services.resources import WriteOptions
from server.storage.db import create_db_engine
from tests.conftest import NO_PROFILE_ENFORCEMENT, NO_SECURITY

SCRIPT_DESA = "desa-5260012003"  # its name gets a <script>
FORMULA_POSYANDU = "posyandu-5260022002-1"  # its name is a spreadsheet formula
SCRIPT_NAME = 'Desa <script>alert("x")</script> Selaasri'
FORMULA_NAME = '=HYPERLINK("http://evil.example","klik")'
CHILD_NAME = "@SUM(1+1) Anak"
OTHER_POSYANDU = "posyandu-5260012002-1"


# --- a small DOM, enough to read the pages ----------------------------------------------


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.parent, self.children = tag, parent, []
        self.attrs = {k: v or "" for k, v in attrs}  # boolean attributes (selected) are ""

    @property
    def text(self):
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def all(self, tag=None, cls=None, **attrs):
        for child in self.children:
            if isinstance(child, str):
                continue
            if (
                (tag is None or child.tag == tag)
                and (cls is None or cls in child.classes())
                and all(
                    child.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()
                )
            ):
                yield child
            yield from child.all(tag, cls, **attrs)

    def one(self, tag=None, cls=None, **attrs):
        found = list(self.all(tag, cls, **attrs))
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]


class _Builder(HTMLParser):
    VOID = {"meta", "link", "input", "br", "img", "hr", "col"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {})

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def dom(response):
    builder = _Builder()
    builder.feed(response.get_data(as_text=True))
    return builder.root


def table_rows(page):
    """[(name, href, {code: (numerator, denominator, shown text, classes)})] of #indicators,
    the total row last (href None)."""
    table = page.one("table", id="indicators")
    rows = []
    for tr in [*table.one("tbody").all("tr"), *table.one("tfoot").all("tr")]:
        name_cell = tr.one("th")
        links = list(name_cell.all("a"))
        cells = {
            td.attrs["data-indicator"]: (
                int(td.attrs["data-numerator"]),
                int(td.attrs["data-denominator"]) if td.attrs["data-denominator"] else None,
                td.one("span", cls="value").text.strip(),
                td.classes(),
            )
            for td in tr.all("td")
        }
        rows.append((name_cell.text.strip(), links[0].attrs["href"] if links else None, cells))
    return rows


def assert_matches(rows, overview):
    """The page's rows (and total) hold exactly the overview's areas and values."""
    expected = {r.area.name: r for r in overview.rows}
    assert sorted(name for name, _, _ in rows[:-1]) == sorted(expected)
    for name, _, cells in rows:
        row = expected[name] if name in expected else overview.total
        for indicator in INDICATORS:
            value = row.values.get(indicator.code)
            numerator, denominator, _, _ = cells[indicator.code]
            assert numerator == (value.numerator if value else 0), (name, indicator.code)
            if not indicator.is_count:
                assert denominator == (value.denominator or 0 if value else 0)


def percent_id(rate):
    return f"{rate:.1f}".replace(".", ",") + " %"


# --- the district ----------------------------------------------------------------------


def _renamed(resource):
    key = (resource["resourceType"], resource["id"])
    if key == ("Location", SCRIPT_DESA):
        return {**resource, "name": SCRIPT_NAME}
    if key == ("Organization", FORMULA_POSYANDU):
        return {**resource, "name": FORMULA_NAME}
    return resource


def _settings(path, **changes):
    base = Settings(database_url=f"sqlite:///{path}", **NO_PROFILE_ENFORCEMENT, **NO_SECURITY)
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def district_db(sqlite_template, tmp_path_factory):
    """The small demo district, two names made hostile, and a child at risk named like a
    formula; returns the database file and that child's Patient id."""
    path = tmp_path_factory.mktemp("dashboard") / "district.sqlite3"
    shutil.copy(sqlite_template, path)
    settings = _settings(path)
    engine = create_db_engine(settings)
    context = ServiceContext(settings, engine)
    demo.load_resources(context, (_renamed(r) for r in generate(PRESETS["small"])))
    month = indicators.months(context)[0]
    child = indicators.children_at_risk(context, FORMULA_POSYANDU, month)[0]
    with context.unit_of_work(write=True) as uow:
        patient = dict(resources.read(uow, "Patient", child.patient_id).content)
        patient["name"] = [{"text": CHILD_NAME, "given": ["@SUM(1+1)"], "family": "Anak"}]
        options = WriteOptions(allow_update_create=True)
        resources.update(uow, "Patient", child.patient_id, patient, options=options)
    engine.dispose()
    return path, child.patient_id


@pytest.fixture(scope="module")
def app(district_db):
    application = create_app(_settings(district_db[0]))
    application.config["TESTING"] = True
    yield application
    application.extensions["ilp"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def context(app):
    return app.extensions["ilp"]


@pytest.fixture(scope="module")
def month(context):
    return indicators.months(context)[0]


def desa_names():
    return {
        _renamed(r)["name"]
        for r in generate(PRESETS["small"])
        if r["resourceType"] == "Location" and r["id"].startswith("desa-")
    }


# --- the kabupaten overview --------------------------------------------------------------


def test_overview_shows_every_desa_with_the_numbers_of_the_services(client, context, month):
    response = client.get("/dashboard/")

    assert response.status_code == 200
    page = dom(response)
    assert page.one("html").attrs["lang"] == "id"
    rows = table_rows(page)
    assert {name for name, _, _ in rows[:-1]} == desa_names()
    expected = indicators.overview(context, month, "desa")
    assert_matches(rows, expected)
    stunting = expected.total.values["stunting"]
    assert stunting.numerator > 0  # the demo has stunted children: the check is not vacuous
    assert rows[-1][2]["stunting"][2] == percent_id(stunting.rate)
    assert page.one("select", id="month").one("option", selected="").attrs["value"] == month


def test_cells_show_the_traffic_light_in_colour_and_in_words(client, context, month):
    rows = table_rows(dom(client.get("/dashboard/")))
    total = rows[-1][2]["stunting"]
    rate = total[0] / total[1] * 100
    light = "green" if rate <= 14 else "amber" if rate <= 17.5 else "red"
    assert f"status-{light}" in total[3]
    page = client.get("/dashboard/").get_data(as_text=True)
    assert {"sesuai target", "mendekati target", "jauh dari target"} <= set(
        re.findall(r'title="([^"]+target)"', page)
    )


def _sorted_values(client, code, direction):
    rows = table_rows(dom(client.get(f"/dashboard/?sort={code}&dir={direction}")))[:-1]
    indicator = BY_CODE[code]
    return [
        (float(num) if indicator.is_count else (num / den * 100 if den else None))
        for _, _, cells in rows
        for num, den, _, _ in [cells[code]]
    ]


def test_sorting_by_an_indicator_orders_rows_both_ways_with_empties_last(client, context, month):
    overview = indicators.overview(context, month, "desa")
    with_empties = [  # an indicator some desa have no denominator for this month
        i.code
        for i in INDICATORS
        if not i.is_count
        and any(
            r.values.get(i.code) is None or not r.values[i.code].denominator for r in overview.rows
        )
        and any(r.values.get(i.code) and r.values[i.code].denominator for r in overview.rows)
    ]
    assert with_empties, "the demo month should have an indicator with empty desa"
    for code in ("stunting", with_empties[0], "kunjungan-rumah"):
        for direction in ("asc", "desc"):
            values = _sorted_values(client, code, direction)
            known = [v for v in values if v is not None]
            assert values == known + [None] * (len(values) - len(known)), (code, direction)
            assert known == sorted(known, reverse=direction == "desc"), (code, direction)
    names = [n for n, _, _ in table_rows(dom(client.get("/dashboard/?sort=name&dir=desc")))][:-1]
    assert names == sorted(names, key=str.casefold, reverse=True)


def test_sort_links_toggle_the_direction_of_the_sorted_column(client):
    page = dom(client.get("/dashboard/?sort=stunting&dir=desc"))
    link = page.one("a", cls="sort", data_indicator="stunting")
    assert parse_qs(urlsplit(link.attrs["href"]).query)["dir"] == ["asc"]
    other = page.one("a", cls="sort", data_indicator="wasting")
    assert parse_qs(urlsplit(other.attrs["href"]).query)["dir"] == ["desc"]


def test_month_filter_shows_that_month(client, context):
    older = indicators.months(context)[2]
    page = dom(client.get(f"/dashboard/?month={older}"))

    assert_matches(table_rows(page), indicators.overview(context, older, "desa"))
    assert page.one("select", id="month").one("option", selected="").attrs["value"] == older
    assert client.get("/dashboard/?month=1999-01").status_code == 404


def test_puskesmas_filter_shows_only_its_desa(client, context, month):
    puskesmas = indicators.puskesmas(context)
    assert [p.code for p in puskesmas] == ["pkm-526001", "pkm-526002"]
    area = puskesmas[0]
    rows = table_rows(dom(client.get(f"/dashboard/?puskesmas={area.code}")))

    expected = indicators.overview(context, month, "desa", area)
    assert_matches(rows, expected)
    assert 0 < len(rows) - 1 < len(desa_names())
    assert client.get("/dashboard/?puskesmas=nope").status_code == 404


def test_trend_charts_are_inline_svg_with_a_target_line(client, context, month):
    page = dom(client.get("/dashboard/"))
    charts = {f.attrs["data-indicator"]: f for f in page.all("figure", cls="chart")}

    assert set(charts) == {i.code for i in INDICATORS}
    stunting = charts["stunting"].one("svg")
    assert stunting.attrs["viewbox"] == "0 0 300 150"
    assert len(list(stunting.all("line", cls="target"))) == 1
    trend = indicators.trend(context, month)["stunting"]
    dots = list(stunting.all("circle"))
    assert len(dots) == sum(1 for _, v in trend if v.rate is not None) > 0
    assert percent_id(trend[-1][1].rate) in stunting.one("desc").text
    assert not list(charts["k1"].all("line", cls="target"))  # no target for K1


# --- drill-down --------------------------------------------------------------------------


def test_drill_down_from_desa_to_posyandu_to_children_at_risk(client, context, month):
    rows = table_rows(dom(client.get("/dashboard/?lang=en")))
    name, href, _ = next(r for r in rows if r[0] == "Desa Karangindah")
    assert href == f"/dashboard/desa/5260022002?month={month}&lang=en"

    desa_page = dom(client.get(href))
    desa_area = indicators.find_area(context, "desa", "5260022002")
    expected = indicators.overview(context, month, "posyandu", desa_area)
    posyandu_rows = table_rows(desa_page)
    assert_matches(posyandu_rows, expected)
    assert {n for n, _, _ in posyandu_rows[:-1]} >= {FORMULA_NAME}
    assert desa_page.all("figure", cls="chart")

    shown = 0
    for _, link, _ in posyandu_rows[:-1]:
        if link is None:  # "(tanpa Posyandu)": people of the desa no Posyandu measured
            continue
        response = client.get(link)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        org_id = urlsplit(link).path.rsplit("/", 1)[1]
        children = [tr for tr in dom(response).all("tr") if "data-patient" in tr.attrs]
        expected_ids = [c.patient_id for c in indicators.children_at_risk(context, org_id, month)]
        assert [tr.attrs["data-patient"] for tr in children] == expected_ids
        for tr in children:
            scores = [
                float(td.text) for td in tr.all("td") if "data-z" in td.attrs and td.text != "-"
            ]
            assert min(scores) < -2, tr.text
            shown += 1
    assert shown > 0


def test_children_at_risk_show_age_in_months_and_reasons(client, context, month, district_db):
    page = dom(client.get(f"/dashboard/posyandu/{FORMULA_POSYANDU}?lang=en"))
    row = page.one("tr", data_patient=district_db[1])
    child = next(
        c
        for c in indicators.children_at_risk(context, FORMULA_POSYANDU, month)
        if c.patient_id == district_db[1]
    )
    born, measured = child.birth_date, child.measured
    months = (int(measured[:4]) - int(born[:4])) * 12 + int(measured[5:7]) - int(born[5:7])
    months -= int(measured[8:10]) < int(born[8:10])
    assert row.one("td", data_age=str(months))
    assert BY_CODE[child.reasons[0]].name_en in row.one("td", cls="reasons").text


def test_unknown_desa_or_posyandu_is_an_html_404(client):
    for url in ("/dashboard/desa/0000000000", "/dashboard/posyandu/nope", "/dashboard/nothing"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.mimetype == "text/html"
        assert "tidak ditemukan" in response.get_data(as_text=True)


def test_a_method_a_page_does_not_take_is_an_html_405(client):
    response = client.delete("/dashboard/")
    assert response.status_code == 405
    assert response.mimetype == "text/html"
    assert "GET" in response.headers["Allow"]


# --- language ----------------------------------------------------------------------------


def test_english_switch_keeps_english_in_every_link_and_form(client, context, month):
    indonesian = dom(client.get("/dashboard/"))
    switch = indonesian.one("a", id="language").attrs["href"]
    assert switch == "/dashboard/?lang=en"

    response = client.get(switch)
    page = dom(response)
    assert page.one("html").attrs["lang"] == "en"
    assert "Children under five" in response.get_data(as_text=True)
    total = indicators.overview(context, month, "desa").total.values["stunting"]
    assert table_rows(page)[-1][2]["stunting"][2] == f"{total.rate:.1f}%"
    links = [a.attrs["href"] for a in page.all("a") if a.attrs.get("id") != "language"]
    assert len(links) > 20 and all("lang=en" in href for href in links)
    assert all("lang=en" in a.attrs["href"] for a in page.all("a", cls="area-link"))
    assert all("lang=en" in a.attrs["href"] for a in page.all("a", cls="sort"))
    form = page.one("form", id="filters")
    assert form.one("input", name="lang").attrs["value"] == "en"
    assert page.one("a", id="language").attrs["href"] == "/dashboard/"


# --- CSV ---------------------------------------------------------------------------------


def read_csv(response):
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_desa_csv_matches_the_table_and_neutralises_formulas(client, context, month):
    response = client.get(f"/dashboard/export/desa/5260022002.csv?month={month}")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="pws-desa-5260022002-{month}.csv"'
    )
    header, *lines = read_csv(response)
    assert header[:2] == ["Kode", "Nama"]
    assert header[2 + 4 * 1] == "Stunting (TB/U < -2 SD) - pembilang"
    page_rows = table_rows(dom(client.get(f"/dashboard/desa/5260022002?month={month}")))
    assert [line[1] for line in lines] == [
        ("'" + name if name.startswith("=") else name) for name, _, _ in page_rows[:-1]
    ] + ["Jumlah"]
    assert "'" + FORMULA_NAME in [line[1] for line in lines]
    for line, (_, _, cells) in zip(lines, page_rows, strict=True):
        for index, indicator in enumerate(INDICATORS):
            numerator, denominator, rate, status = line[2 + 4 * index : 6 + 4 * index]
            page_num, page_den, _, classes = cells[indicator.code]
            assert int(numerator) == page_num
            assert (int(denominator) if denominator else None) == page_den
            if rate:
                assert float(rate) == round(page_num / page_den * 100, 1)
            assert bool(status) == any(c.startswith("status-") for c in classes)


def test_overview_csv_follows_sort_and_filter_in_english(client, context, month):
    area = indicators.puskesmas(context)[1]
    response = client.get(
        f"/dashboard/export/overview.csv?month={month}&puskesmas={area.code}"
        "&sort=stunting&dir=desc&lang=en"
    )
    header, *lines = read_csv(response)
    assert header[:2] == ["Code", "Name"]
    page = table_rows(
        dom(client.get(f"/dashboard/?month={month}&puskesmas={area.code}&sort=stunting&dir=desc"))
    )
    assert [line[1] for line in lines[:-1]] == [name for name, _, _ in page[:-1]]
    assert lines[-1][1] == "Total"


def test_children_csv_neutralises_a_formula_name(client, month):
    response = client.get(f"/dashboard/export/posyandu/{FORMULA_POSYANDU}.csv?month={month}")

    assert response.headers["Cache-Control"] == "no-store"
    header, *lines = read_csv(response)
    assert header[0] == "Nama"
    names = [line[0] for line in lines]
    assert "'" + CHILD_NAME in names
    assert not any(name.startswith(("=", "+", "-", "@")) for name in names)
    for line in lines:  # z-scores are plain numbers, one of them below -2
        assert min(float(z) for z in line[5:8] if z) < -2, line


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_neutralised_but_numbers_are_not(start):
    assert report.csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert report.csv_cell(-2.346) == "-2.35"
    assert report.csv_cell(14.0) == "14"


def test_both_languages_hold_every_text_and_format_numbers_their_way():
    assert TEXT["id"].keys() == TEXT["en"].keys()
    assert (Words("id").number(12345), Words("id").percent(14.25)) == ("12.345", "14,2 %")
    assert (Words("en").number(12345), Words("en").percent(14.25)) == ("12,345", "14.2%")
    assert Words("id").decimal(-1234.5, 2) == "-1.234,50"


# --- security ----------------------------------------------------------------------------


def test_names_are_escaped(client):
    body = client.get("/dashboard/").get_data(as_text=True)

    assert "<script" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body


def test_pages_carry_the_csp_and_no_inline_script_or_style(client, month):
    for url in (
        "/dashboard/",
        "/dashboard/desa/5260022002",
        f"/dashboard/posyandu/{FORMULA_POSYANDU}",
        "/dashboard/nothing",
    ):
        response = client.get(url)
        assert response.headers["Content-Security-Policy"] == CSP, url
        body = response.get_data(as_text=True)
        assert " style=" not in body and "<style" not in body and "<script" not in body
    css = client.get("/dashboard/static/dashboard/dashboard.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    css.close()


def test_a_fault_is_an_html_500_with_a_reference_only(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret-detail")

    monkeypatch.setattr(indicators, "overview", broken)
    response = client.get("/dashboard/?lang=en")

    assert response.status_code == 500
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "secret-detail" not in body
    reference = dom(response).one("code").text
    assert any(reference in r.getMessage() for r in caplog.records)


def test_too_many_requests_is_an_html_429(district_db):
    limited = create_app(_settings(district_db[0], rate_limit=1, rate_burst=1))
    try:
        client = limited.test_client()
        client.get("/dashboard/nothing")
        response = client.get("/dashboard/nothing")
        assert response.status_code == 429
        assert response.mimetype == "text/html"
        assert int(response.headers["Retry-After"]) >= 1
        assert "Terlalu banyak permintaan" in response.get_data(as_text=True)
    finally:
        limited.extensions["ilp"].engine.dispose()


# --- sign-in (ILP_AUTH on) ---------------------------------------------------------------


@dataclasses.dataclass
class Secured:
    app: object
    secrets: dict

    def client(self):
        return self.app.test_client()


@pytest.fixture(scope="module")
def secured(district_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("secured") / "district.sqlite3"
    shutil.copy(district_db[0], path)
    application = create_app(_settings(path, auth=True, audit=True))
    application.config["TESTING"] = True
    engine = application.extensions["ilp"].engine
    secrets = {
        "dinkes": clients.add_client(engine, "dinkes", scopes="system/*.rs", region="5260"),
        "kader": clients.add_client(
            engine, "kader", scopes="system/*.rs", organization=FORMULA_POSYANDU
        ),
        "leaver": clients.add_client(engine, "leaver", scopes="system/*.rs"),
    }
    yield Secured(application, secrets)
    engine.dispose()


def audit_count(secured):
    with secured.app.extensions["ilp"].engine.connect() as connection:
        query = "SELECT count(*) FROM resource WHERE res_type = 'AuditEvent'"
        return connection.exec_driver_sql(query).scalar()


def login_form(client, url="/dashboard/login"):
    page = dom(client.get(url))
    return page.one("input", name="csrf_token").attrs["value"], page


def sign_in(client, client_id, secret, **extra):
    token, _ = login_form(client)
    data = {"client_id": client_id, "client_secret": secret, "csrf_token": token, **extra}
    return client.post("/dashboard/login", data=data)


def test_signed_out_user_is_sent_to_the_login_page(secured):
    client = secured.client()
    response = client.get("/dashboard/desa/5260022002?lang=en")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/dashboard/login"
    assert parse_qs(location.query) == {
        "next": ["/dashboard/desa/5260022002?lang=en"],
        "lang": ["en"],
    }
    page = dom(client.get(response.headers["Location"]))
    assert page.one("html").attrs["lang"] == "en"
    assert page.one("input", name="next").attrs["value"] == "/dashboard/desa/5260022002?lang=en"
    assert client.get("/dashboard/export/overview.csv").status_code == 302


def test_sign_in_sets_a_strict_cookie_and_returns_to_the_page(secured):
    client = secured.client()
    response = sign_in(
        client, "dinkes", secured.secrets["dinkes"], next="/dashboard/desa/5260022002"
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/desa/5260022002"
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("ilp_dashboard=")
    )
    assert {"HttpOnly", "SameSite=Strict", "Path=/dashboard"} <= {
        part.strip() for part in cookie.split(";")
    }
    page = client.get("/dashboard/desa/5260022002")
    assert page.status_code == 200
    assert table_rows(dom(page))


def test_signed_in_user_can_sign_in_as_another_client(secured):
    client = secured.client()
    sign_in(client, "leaver", secured.secrets["leaver"])

    response = sign_in(client, "kader", secured.secrets["kader"])
    assert response.status_code == 302
    assert client.get(f"/dashboard/posyandu/{OTHER_POSYANDU}").status_code == 403


def test_cookie_is_secure_when_the_public_url_is_https(secured, tmp_path):
    path = tmp_path / "district.sqlite3"
    shutil.copy(secured.app.extensions["ilp"].settings.database_url[len("sqlite:///") :], path)
    https = create_app(
        _settings(path, auth=True, base_url="https://dinkes.example/fhir", audit=False)
    )
    try:  # the request is plain HTTP, as behind a TLS proxy
        response = https.test_client().get("/dashboard/login")
        cookie = response.headers.getlist("Set-Cookie")[0]
        assert cookie.startswith("ilp_dashboard_csrf=") and "Secure" in cookie.split("; ")
    finally:
        https.extensions["ilp"].engine.dispose()


def test_sign_in_never_redirects_to_another_site(secured):
    response = sign_in(
        secured.client(), "dinkes", secured.secrets["dinkes"], next="https://evil.example/x"
    )
    assert response.headers["Location"] == "/dashboard/"


def test_wrong_secret_is_refused(secured):
    client = secured.client()
    response = sign_in(client, "dinkes", "not-the-secret")

    assert response.status_code == 401
    assert "ID klien atau rahasia klien salah" in response.get_data(as_text=True)
    assert not any(c.startswith("ilp_dashboard=") for c in response.headers.getlist("Set-Cookie"))
    assert client.get("/dashboard/").status_code == 302


def test_login_without_the_csrf_token_is_a_400(secured):
    client = secured.client()
    login_form(client)  # the double-submit cookie is set, but the form value is missing
    data = {"client_id": "dinkes", "client_secret": secured.secrets["dinkes"]}

    response = client.post("/dashboard/login", data=data)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Formulir kedaluwarsa" in response.get_data(as_text=True)
    forged = client.post("/dashboard/login", data={**data, "csrf_token": "x" * 43})
    assert forged.status_code == 400


def test_client_bound_to_a_posyandu_sees_its_children_only(secured, month):
    client = secured.client()
    sign_in(client, "kader", secured.secrets["kader"])

    own = client.get(f"/dashboard/posyandu/{FORMULA_POSYANDU}")
    assert own.status_code == 200
    assert CHILD_NAME in own.get_data(as_text=True)

    audit_events = audit_count(secured)
    other = client.get(f"/dashboard/posyandu/{OTHER_POSYANDU}?lang=en")
    assert other.status_code == 403
    assert audit_count(secured) == audit_events + 1  # refused, and recorded as for the API
    assert other.mimetype == "text/html"
    body = other.get_data(as_text=True)
    assert "You may not see this page." in body
    assert "data-patient" not in body and "<table" not in body
    csv_response = client.get(f"/dashboard/export/posyandu/{OTHER_POSYANDU}.csv?month={month}")
    assert csv_response.status_code == 403
    assert csv_response.mimetype == "text/html"


def test_logout_needs_the_csrf_token_and_clears_the_cookie(secured):
    client = secured.client()
    sign_in(client, "dinkes", secured.secrets["dinkes"])
    page = dom(client.get("/dashboard/"))
    token = page.one("form", action="/dashboard/logout").one("input", name="csrf_token")

    assert client.post("/dashboard/logout").status_code == 400
    response = client.post("/dashboard/logout", data={"csrf_token": token.attrs["value"]})
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/login"
    assert client.get("/dashboard/").status_code == 302


def test_revoked_client_must_sign_in_again(secured):
    client = secured.client()
    sign_in(client, "leaver", secured.secrets["leaver"])
    assert client.get("/dashboard/").status_code == 200

    clients.revoke_client(secured.app.extensions["ilp"].engine, "leaver")
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/dashboard/login"
