"""Injection attempts against every search parameter type, on SQLite and PostgreSQL.

SQL metacharacters and classic payloads go into values (and names) of string, token, date,
number, quantity, reference, uri and composite parameters, chains, ``_has``, ``_id``,
``_lastUpdated`` and the result parameters, into ``If-None-Exist`` and into conditional update
and delete queries.  Each answer must be a 200 holding exactly the resources that literally
match the payload (computed here from the stored population, not by the server) or a 400
OperationOutcome naming the parameter; never a 5xx; and the database must be as it was.
Markup in stored names comes back byte for byte in FHIR JSON, never as HTML.

One test per parameter (all payloads in it, one stored population per test); the requests
that once showed bugs (a lone backslash, ``uri:above``, mistyped cursors) have tests of their
own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from server.fhir.text import normalize
from tests.fuzz.driving import snapshot
from tests.helpers import FHIR_JSON, put

NIK = "https://fhir.kemkes.go.id/id/nik"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
WEIGHTS_VS = "https://fhir.ilp-gateway.id/ValueSet/weights"
UNDERSCORE_VS = "http://example.org/fhir/ValueSet/a_b"

PAYLOADS = (
    "' OR '1'='1",
    "'; DROP TABLE resource; --",
    "%",
    "_",
    "\\",
    "%' --",
    '" OR ""="',
    "1) OR (1=1",
    ") UNION SELECT res_id FROM resource --",
    "$1",
    ":param",
    "*/",
    "/*",
    "?",  # SQLite's placeholder
    "%s",  # psycopg's placeholders
    "%(res_id)s",
    "\\'; --",  # a backslash-escaped quote (MySQL style)
    "'; SELECT pg_sleep(5); --",
    "\u2019 OR \u20191\u2019=\u20191",  # right single quotation marks
    "\uff07 OR \uff071\uff07=\uff071",  # fullwidth apostrophes: NFKD folds them to "'"
    "\u02bc; DROP TABLE resource; --",  # modifier letter apostrophe
    "\uff05",  # fullwidth percent sign: NFKD folds it to "%"
)

# -- the stored population --------------------------------------------------------------------


def _patient(res_id: str, family: str, given: list[str], nik: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": [{"system": NIK, "value": nik}],
        "name": [{"family": family, "given": given}],
        **extra,
    }


def _observation(
    res_id: str, subject: str, code: str, display: str, value: dict[str, Any], when: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": when,
        **value,
    }


def _quantity(value: float, code: str) -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code}}


POPULATION: tuple[dict[str, Any], ...] = (
    {
        "resourceType": "Organization",
        "id": "org-pkm",
        "name": "Puskesmas Sukamaju",
        "identifier": [{"system": "https://fhir.kemkes.go.id/id/organization", "value": "100"}],
        "address": [{"city": "Bandung"}],
    },
    {
        "resourceType": "Organization",
        "id": "org-klinik",
        "name": "Klinik O'Brien",
        "partOf": {"reference": "Organization/org-pkm"},
    },
    _patient(
        "p-siti",
        "Siti",
        ["Aminah"],
        "3201234567890001",
        gender="female",
        birthDate="1990-05-17",
        address=[{"line": ["Jl. Merdeka 1"], "city": "Bandung"}],
        managingOrganization={"reference": "Organization/org-pkm"},
    ),
    _patient(
        "p-budi",
        "Budi",
        ["Santoso"],
        "3201234567890002",
        gender="male",
        birthDate="2020-01-02",
        address=[{"city": "Jakarta"}],
        managingOrganization={"reference": "Organization/org-klinik"},
    ),
    # metacharacters stored literally: searches must find these by their text, nothing else
    _patient("p-obrien", "O'Brien", ["D'Arcy"], "' OR '1'='1", gender="male"),
    _patient("p-meta", "Pct%Under_Score\\Back", ["$1"], "3201234567890004"),
    _observation(
        "o-weight", "p-siti", "29463-7", "Body weight", _quantity(12.5, "kg"), "2026-01-05"
    ),
    _observation("o-height", "p-budi", "8302-2", "Body height", _quantity(85, "cm"), "2026-02-01"),
    _observation("o-note", "p-meta", "8302-2", "Body height", {"valueString": "50%_done"}, "2026"),
    {
        "resourceType": "ValueSet",
        "id": "vs-weights",
        "url": WEIGHTS_VS,
        "status": "active",
        "compose": {"include": [{"system": LOINC, "concept": [{"code": "29463-7"}]}]},
    },
    {
        "resourceType": "ValueSet",
        "id": "vs-underscore",
        "url": UNDERSCORE_VS,
        "status": "active",
    },
)
_BY_KEY = {(r["resourceType"], r["id"]): r for r in POPULATION}


def _of(resource_type: str) -> list[dict[str, Any]]:
    return [r for r in POPULATION if r["resourceType"] == resource_type]


def store_population(client: Any) -> None:
    for resource in POPULATION:
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = put(client, url, resource)
        assert response.status_code == 201, response.get_json()


# -- what genuinely matches (the oracle) -------------------------------------------------------

Oracle = Callable[[str], set[str]]


def _names(r: dict[str, Any]) -> list[str]:
    return [p for n in r.get("name", ()) for p in (n.get("family"), *n.get("given", ())) if p]


def _address_parts(r: dict[str, Any]) -> list[str]:
    return [p for a in r.get("address", ()) for p in (*a.get("line", ()), a.get("city")) if p]


def _strings(
    resource_type: str, texts: Callable[[dict[str, Any]], list[str]], mode: str = "start"
) -> Oracle:
    """Ids whose texts match the payload literally (case and accents folded, as FHIR asks)."""

    def hit(text: str, payload: str) -> bool:
        if mode == "exact":
            return text == payload
        folded, wanted = normalize(text), normalize(payload)
        return wanted in folded if mode == "contains" else folded.startswith(wanted)

    def oracle(payload: str) -> set[str]:
        return {r["id"] for r in _of(resource_type) if any(hit(t, payload) for t in texts(r))}

    return oracle


def _identifiers(system: str | None = None, *, as_system: bool = False) -> Oracle:
    def oracle(payload: str) -> set[str]:
        return {
            r["id"]
            for r in _of("Patient")
            for i in r.get("identifier", ())
            if (i.get("system") == payload if as_system else i.get("value") == payload)
            and (system is None or i.get("system") == system)
        }

    return oracle


def _concept_texts(r: dict[str, Any]) -> list[str]:
    code = r.get("code", {})
    return [c.get("display", "") for c in code.get("coding", ())] + [code.get("text", "")]


def _code_text(payload: str) -> set[str]:
    wanted = normalize(payload)
    return {
        r["id"]
        for r in _of("Observation")
        if any(
            normalize(t).startswith(wanted) or f" {wanted}" in normalize(t)
            for t in _concept_texts(r)
            if t
        )
    }


def _uris(mode: str) -> Oracle:
    def hit(stored: str, payload: str) -> bool:
        if mode == "below":
            return stored.startswith(payload)
        if mode == "above":
            return payload.startswith(stored)
        return stored == payload

    return lambda payload: {r["id"] for r in _of("ValueSet") if hit(r["url"], payload)}


def _none(_payload: str) -> set[str]:
    return set()


def _every(resource_type: str) -> Oracle:
    return lambda _payload: {r["id"] for r in _of(resource_type)}


def _not_gender(payload: str) -> set[str]:
    return {r["id"] for r in _of("Patient") if r.get("gender") != payload}


_patient_names = _strings("Patient", _names)


def _observations_of(patients: Oracle) -> Oracle:
    def oracle(payload: str) -> set[str]:
        wanted = {f"Patient/{p}" for p in patients(payload)}
        return {r["id"] for r in _of("Observation") if r["subject"]["reference"] in wanted}

    return oracle


# -- the cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``resource_type?name=value`` with ``{p}`` in name or value standing for the payload."""

    id: str
    resource_type: str
    name: str
    value: str
    oracle: Oracle = _none
    # a literal payload is a valid value here: the answer must be 200 (unless it holds "\")
    literal: bool = False
    extra: tuple[tuple[str, str], ...] = ()
    method: str = "GET"

    def params(self, payload: str) -> list[tuple[str, str]]:
        name = self.name.replace("{p}", payload)
        return [(name, self.value.replace("{p}", payload)), *self.extra]

    def request(self, payload: str) -> str:
        return f"{self.method} /fhir/{self.resource_type}?{urlencode(self.params(payload))}"


CASES = (
    # string
    Case("string", "Patient", "name", "{p}", _patient_names, literal=True),
    Case("string-post", "Patient", "name", "{p}", _patient_names, literal=True, method="POST"),
    Case(
        "string:contains",
        "Patient",
        "name:contains",
        "{p}",
        _strings("Patient", _names, "contains"),
        literal=True,
    ),
    Case(
        "string:exact",
        "Patient",
        "family:exact",
        "{p}",
        _strings("Patient", lambda r: [n["family"] for n in r["name"]], "exact"),
        literal=True,
    ),
    Case(
        "string-address",
        "Patient",
        "address",
        "{p}",
        _strings("Patient", _address_parts),
        literal=True,
    ),
    Case(
        "string-organization:contains",
        "Organization",
        "name:contains",
        "{p}",
        _strings("Organization", lambda r: [r["name"]], "contains"),
        literal=True,
    ),
    Case(
        "string-value:contains",
        "Observation",
        "value-string:contains",
        "{p}",
        _strings("Observation", lambda r: [r.get("valueString", "")], "contains"),
        literal=True,
    ),
    # token
    Case("token", "Patient", "identifier", "{p}", _identifiers(), literal=True),
    Case(
        "token-system|code",
        "Patient",
        "identifier",
        f"{NIK}|{{p}}",
        _identifiers(NIK),
        literal=True,
    ),
    Case(
        "token-system",
        "Patient",
        "identifier",
        "{p}|3201234567890001",
        _identifiers(as_system=True),
        literal=True,
    ),
    Case("token:text", "Observation", "code:text", "{p}", _code_text, literal=True),
    Case("token:not", "Patient", "gender:not", "{p}", _not_gender, literal=True),
    Case("token:in", "Observation", "code:in", "{p}"),
    Case("token:missing", "Patient", "gender:missing", "{p}"),
    Case("token-_tag", "Patient", "_tag", "{p}", literal=True),
    # date
    Case("date", "Patient", "birthdate", "{p}"),
    Case("date-prefix", "Patient", "birthdate", "ge{p}"),
    Case("date-_lastUpdated", "Patient", "_lastUpdated", "{p}"),
    Case("date-_lastUpdated-prefix", "Patient", "_lastUpdated", "gt{p}"),
    # number (Patient.age: the only number parameter of the supported types)
    Case("number", "Patient", "age", "{p}"),
    Case("number-prefix", "Patient", "age", "lt{p}"),
    # quantity
    Case("quantity", "Observation", "value-quantity", "{p}"),
    Case("quantity-system", "Observation", "value-quantity", "12.5|{p}|kg"),
    Case("quantity-code", "Observation", "value-quantity", f"12.5|{UCUM}|{{p}}"),
    Case("quantity-unit", "Observation", "value-quantity", "12.5||{p}"),
    # reference, chains, reverse chains
    Case("reference", "Observation", "subject", "{p}", literal=True),
    Case("reference-typed", "Observation", "subject", "Patient/{p}", literal=True),
    Case("reference:identifier", "Observation", "subject:identifier", "{p}", literal=True),
    Case(
        "reference-chain",
        "Observation",
        "subject:Patient.name",
        "{p}",
        _observations_of(_patient_names),
        literal=True,
    ),
    Case("reference-_has", "Patient", "_has:Observation:subject:code", "{p}", literal=True),
    # uri
    Case("uri", "ValueSet", "url", "{p}", _uris("exact"), literal=True),
    Case("uri:below", "ValueSet", "url:below", "{p}", _uris("below"), literal=True),
    Case("uri:above", "ValueSet", "url:above", "{p}", _uris("above"), literal=True),
    Case("uri-_profile", "Patient", "_profile", "{p}", literal=True),
    # composite
    Case("composite-value", "Observation", "code-value-quantity", f"{LOINC}|29463-7${{p}}"),
    Case("composite-code", "Observation", "code-value-quantity", "{p}$12.5"),
    Case("composite-unit", "Observation", "code-value-quantity", f"{LOINC}|29463-7$12.5|{{p}}|kg"),
    # _id
    Case("_id", "Patient", "_id", "{p}", literal=True),
    # result parameters: every Patient matches, nothing is included
    Case("_sort", "Patient", "_sort", "{p}", _every("Patient")),
    Case("_sort-descending", "Patient", "_sort", "-{p}", _every("Patient")),
    Case("_include", "Patient", "_include", "{p}", _every("Patient")),
    Case("_include-param", "Patient", "_include", "Patient:{p}", _every("Patient")),
    Case("_include-target", "Patient", "_include", "Patient:organization:{p}", _every("Patient")),
    Case("_revinclude", "Patient", "_revinclude", "{p}:subject", _every("Patient")),
    Case(
        "_revinclude-target", "Patient", "_revinclude", "Observation:subject:{p}", _every("Patient")
    ),
    Case("_elements", "Patient", "_elements", "{p}", _every("Patient")),
    Case("_count", "Patient", "_count", "{p}", _every("Patient")),
    Case("_summary", "Patient", "_summary", "{p}", _every("Patient")),
    Case("_total", "Patient", "_total", "{p}", _every("Patient")),
    # payloads as names, modifiers and chain links: always 400
    Case("name", "Patient", "{p}", "x"),
    Case("modifier", "Patient", "name:{p}", "x"),
    Case("chain-link", "Observation", "subject:Patient.{p}", "x"),
    Case("_has-link", "Patient", "_has:Observation:{p}:code", "x"),
)
_CASES = {case.id: case for case in CASES}

# A lone "\\" once vanished (taken as an escape with nothing after it), leaving an empty value
# that matched far too much, or no condition at all (500): it is a literal backslash.


# -- checking an answer -----------------------------------------------------------------------


def send(client: Any, case: Case, payload: str) -> Any:
    if case.method == "POST":
        return client.post(
            f"/fhir/{case.resource_type}/_search",
            data=urlencode(case.params(payload)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    return client.get(f"/fhir/{case.resource_type}", query_string=case.params(payload))


def problems(case: Case, payload: str, response: Any) -> list[str]:
    """What is wrong with the answer to one request (empty when nothing is)."""
    status = response.status_code
    if status not in (200, 400):
        return [f"status {status}: {response.get_data()[:300]!r}"]
    if not response.content_type.startswith(FHIR_JSON):
        return [f"content type {response.content_type}"]
    body = response.get_json()
    if status == 400:
        found = []
        if body.get("resourceType") != "OperationOutcome":
            found.append(f"a 400 that is not an OperationOutcome: {body}")
        elif body["issue"][0].get("expression") != [case.params(payload)[0][0]]:
            found.append(f"a 400 naming {body['issue'][0].get('expression')}: {body}")
        if case.literal and "\\" not in payload:
            found.append(f"a literal value refused: {body}")
        return found
    matched = {e["resource"]["id"] for e in body.get("entry", ()) if e["search"]["mode"] == "match"}
    included = [e["fullUrl"] for e in body.get("entry", ()) if e["search"]["mode"] != "match"]
    expected = case.oracle(payload)
    found = []
    if matched != expected:
        found.append(f"matched {sorted(matched)}, literally matching: {sorted(expected)}")
    if included:
        found.append(f"included {included}")
    if case.name == "_elements":
        for entry in body.get("entry", ()):
            extra = set(entry["resource"]) - {"resourceType", "id", "meta"}
            if extra:
                found.append(f"_elements kept {sorted(extra)}")
    return found


RESOURCE = sa.table(
    "resource",
    sa.column("res_type"),
    sa.column("res_id"),
    sa.column("version_id"),
    sa.column("deleted"),
)


def current_rows(engine: sa.Engine) -> dict[tuple[str, str], tuple[int, bool]]:
    """(type, id) -> (version, deleted) of every resource, tombstones included."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(RESOURCE)).all()
    return {(t, i): (v, bool(d)) for t, i, v, d in rows}


def table_state(engine: sa.Engine) -> tuple[Any, ...]:
    """Table names, row counts, and every current row's type, id, version and deletion."""
    tables = tuple(sorted(sa.inspect(engine).get_table_names()))
    return tables, snapshot(engine), sorted(current_rows(engine).items())


@contextmanager
def unchanged(db_url: str) -> Iterator[sa.Engine]:
    """The database after the block must equal the database before it."""
    engine = sa.create_engine(db_url)
    try:
        before = table_state(engine)
        yield engine
        after = table_state(engine)
        assert after == before, "the database changed"
    finally:
        engine.dispose()


# -- searches ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_payloads_match_only_literally_and_change_nothing(client, db_url, case):
    store_population(client)
    failures = []
    with unchanged(db_url):
        for payload in PAYLOADS:
            response = send(client, case, payload)
            failures += [f"{case.request(payload)}: {p}" for p in problems(case, payload, response)]
    assert not failures, "\n".join(failures)


def test_metacharacters_stored_in_values_match_literally(client, db_url):
    """Positive controls: a stored "%", "_", "$1" or quote is found by itself, not by all."""
    store_population(client)

    def ids(query: str) -> set[str]:
        response = client.get("/fhir/" + query)
        assert response.status_code == 200, (query, response.get_json())
        return {e["resource"]["id"] for e in response.get_json().get("entry", ())}

    with unchanged(db_url):
        assert ids("Patient?name:contains=%25") == {"p-meta"}
        assert ids("Patient?name:contains=_") == {"p-meta"}
        assert ids("Patient?name:contains=%25under_") == {"p-meta"}
        assert ids("Patient?name:contains=t%25U") == {"p-meta"}
        assert ids("Patient?name=pct%25") == {"p-meta"}
        assert ids("Patient?name=%25") == set()
        assert ids("Patient?name=_") == set()
        assert ids("Patient?name=%241") == {"p-meta"}  # "$1" as a given name
        assert ids("Patient?name=o'b") == {"p-obrien"}
        assert ids("Patient?name:contains='") == {"p-obrien"}
        assert ids("Patient?family:exact=O'Brien") == {"p-obrien"}
        assert ids("Patient?family:exact=o'brien") == set()
        assert ids("Patient?identifier=' OR '1'='1") == {"p-obrien"}
        assert ids(f"Patient?identifier={NIK}|' OR '1'='1") == {"p-obrien"}
        assert ids("Organization?name:contains=o'b") == {"org-klinik"}
        assert ids("Observation?value-string:contains=%25_") == {"o-note"}
        assert ids("Observation?value-string:contains=0_") == set()
        assert ids("Observation?subject:Patient.name=o'") == set()
        assert ids("Observation?subject:Patient.name:contains=_") == {"o-note"}
        assert ids(f"ValueSet?url:below={UNDERSCORE_VS}") == {"vs-underscore"}
        assert ids("ValueSet?url:below=http://example.org/fhir/ValueSet/a%25") == set()
        assert ids(f"ValueSet?url:above={UNDERSCORE_VS}/child") == {"vs-underscore"}
        assert ids(f"Observation?code:in={WEIGHTS_VS}") == {"o-weight"}


def test_uri_above_treats_stored_metacharacters_literally(client, db_url):
    store_population(client)
    with unchanged(db_url):
        response = client.get(
            "/fhir/ValueSet", query_string={"url:above": "http://example.org/fhir/ValueSet/aXb/c"}
        )
    assert response.status_code == 200
    assert "entry" not in response.get_json(), response.get_json()


# -- _cursor ----------------------------------------------------------------------------------
#
# A next link's ``_cursor`` is base64 JSON of the last row's sort values, bound into the keyset
# condition of the next page.  Crafted cursors carry payloads where the sort values go.

# (_sort, the cursor values of a row of it): the "absent" flag (0/1) and the value of each sort
# key, then the id that breaks ties
SORTS = {
    "": ["p-meta"],
    "name": [0, "o'brien", "p-obrien"],
    "-birthdate,-_id": [0, {"t": "2000-01-01T00:00:00+00:00"}, "p-siti", "p-siti"],
}


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _cursors(template: list[Any]) -> Iterator[tuple[str, str]]:
    """(description, cursor): raw payloads, then each string value of a row replaced by each
    payload (dates by a date made of it); then cursors of the wrong width."""
    for payload in PAYLOADS:
        yield f"raw {payload!r}", payload
    for index, value in enumerate(template):
        if isinstance(value, int):
            continue
        for payload in PAYLOADS:
            crafted = list(template)
            crafted[index] = {"t": payload} if isinstance(value, dict) else payload
            yield f"{crafted!r}", _cursor(crafted)
    for crafted in ([], template + template, {"a": 1}, "' OR '1'='1", None):
        yield f"{crafted!r}", _cursor(crafted)


@pytest.mark.parametrize("sort", list(SORTS), ids=["by-id", "name", "-birthdate,-_id"])
def test_crafted_cursors_are_refused_or_page_on(client, db_url, sort):
    store_population(client)
    everybody = {r["id"] for r in _of("Patient")}
    failures = []
    pages = 0
    with unchanged(db_url):
        for description, cursor in _cursors(SORTS[sort]):
            query = {"_cursor": cursor, **({"_sort": sort} if sort else {})}
            response = client.get("/fhir/Patient", query_string=query)
            body = response.get_json(silent=True) or {}
            if response.status_code == 400:
                if body.get("issue", [{}])[0].get("expression") != ["_cursor"]:
                    failures.append(f"{description}: 400 {body}")
            elif response.status_code == 200:
                pages += 1
                got = {e["resource"]["id"] for e in body.get("entry", ())}
                if not got <= everybody:
                    failures.append(f"{description}: matched {got}")
            else:
                failures.append(f"{description}: {response.status_code}")
    assert not failures, "\n".join(failures)
    assert pages >= len(PAYLOADS)  # the crafted values were bound and searched with


# (_sort, cursor values of the wrong JSON types): each was a 500 on SQLite or PostgreSQL
MISTYPED_CURSORS = (
    ("", [[1, 2]]),  # a list: sqlite3 cannot bind it
    ("", [True]),
    ("", [1]),  # a number for the varchar res_id
    ("", [-1.5]),
    ("", [{"t": "2026-01-01T00:00:00+00:00"}]),  # a timestamp for res_id
    ("name", ["x", "a", "p-siti"]),  # text for the integer "absent" flag
    ("name", [0, 1, "p-siti"]),  # a number for a name
    ("name", [True, "a", "p-siti"]),
    ("name", [0, [1], "p-siti"]),
    ("-birthdate,-_id", [0, "x", "p-siti", "p-siti"]),  # text for a timestamp
    ("-birthdate,-_id", [0, 5, "p-siti", "p-siti"]),
)


@pytest.mark.parametrize(
    ("sort", "values"),
    MISTYPED_CURSORS,
    ids=[f"{sort or 'by-id'}-{values!r}" for sort, values in MISTYPED_CURSORS],
)
def test_mistyped_cursor_values_are_refused(client, db_url, sort, values):
    store_population(client)
    query = {"_cursor": _cursor(values), **({"_sort": sort} if sort else {})}
    with unchanged(db_url):
        response = client.get("/fhir/Patient", query_string=query)
    assert response.status_code == 400, response.get_data()
    assert response.get_json()["issue"][0]["expression"] == ["_cursor"]


# -- conditional interactions -----------------------------------------------------------------


@contextmanager
def _engine(db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


CONDITIONS: dict[str, Oracle] = {
    "identifier": _identifiers(),
    "name": _patient_names,
    "name:contains": _strings("Patient", _names, "contains"),
}
KINDS = ("If-None-Exist", "update", "delete")


def _new_patient(index: int) -> dict[str, Any]:
    # nothing in it starts with or equals a payload, so later payloads still match as before
    return {
        "resourceType": "Patient",
        "identifier": [{"system": NIK, "value": f"9{index:015d}"}],
        "name": [{"family": f"Baru{index}"}],
    }


def conditional_write(
    client: Any, engine: sa.Engine, kind: str, name: str, payload: str, index: int
) -> list[str]:
    """One conditional create, update or delete whose condition is ``name=payload``; what is
    wrong with it.  It must act on the literal matches only: none -> create (201) or nothing
    (204), one -> that one (200 as it is, 200 updated, 204 deleted), several -> 412; or 400
    naming the parameter and changing nothing.  Leaves the population as it found it."""
    expected = CONDITIONS[name](payload)
    condition = urlencode({name: payload})
    only = _BY_KEY["Patient", next(iter(expected))] if len(expected) == 1 else None
    before = current_rows(engine)
    if kind == "If-None-Exist":
        what = f"POST /fhir/Patient If-None-Exist: {condition}"
        response = client.post(
            "/fhir/Patient",
            json=_new_patient(index),
            headers={"Content-Type": FHIR_JSON, "If-None-Exist": condition},
        )
        want = {0: 201, 1: 200}.get(len(expected), 412)
    elif kind == "update":
        what = f"PUT /fhir/Patient?{condition}"
        body = {**only, "active": True} if only else _new_patient(index)  # a real change
        response = client.put(
            "/fhir/Patient", query_string=condition, json=body, headers={"Content-Type": FHIR_JSON}
        )
        want = {0: 201, 1: 200}.get(len(expected), 412)
    else:
        what = f"DELETE /fhir/Patient?{condition}"
        response = client.delete("/fhir/Patient", query_string=condition)
        want = 204 if len(expected) <= 1 else 412
    after = current_rows(engine)
    status = response.status_code
    found = []
    if status == 400:
        outcome = response.get_json(silent=True) or {}
        if outcome.get("issue", [{}])[0].get("expression") != [name]:
            found.append(f"a 400 not naming {name}: {outcome}")
        if after != before:
            found.append("a 400, but the database changed")
    elif status != want:
        found.append(f"{status}, not {want} (literal matches: {sorted(expected)})")
    may_change = {("Patient", only["id"])} if only and kind != "If-None-Exist" else set()
    changed = {k for k in _BY_KEY if before.get(k) != after.get(k)} - may_change
    if changed:
        found.append(f"changed {sorted(changed)} (literal matches: {sorted(expected)})")
    if status == 200 and only and response.get_json()["id"] != only["id"]:
        found.append(f"answered with {response.get_json()['id']}, not {only['id']}")
    for key in {k for k in after if after[k] != before.get(k)}:  # put the population back
        if key in _BY_KEY:
            put(client, f"/fhir/{key[0]}/{key[1]}", _BY_KEY[key])
        elif not after[key][1]:
            client.delete(f"/fhir/{key[0]}/{key[1]}")
    return [f"{what}: {p} {response.get_data()[:300]!r}" for p in found]


@pytest.mark.parametrize("kind", KINDS)
def test_conditional_writes_act_on_literal_matches_only(client, db_url, kind):
    store_population(client)
    failures = []
    with _engine(db_url) as engine:
        for name in CONDITIONS:
            for index, payload in enumerate(PAYLOADS):
                if payload != "\\":  # test_conditional_writes_with_a_lone_backslash
                    failures += conditional_write(client, engine, kind, name, payload, index)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in KINDS for n in CONDITIONS])
def test_conditional_writes_with_a_lone_backslash(client, db_url, kind, name):
    store_population(client)
    with _engine(db_url) as engine:
        failures = conditional_write(client, engine, kind, name, "\\", 0)
    assert not failures, "\n".join(failures)


def test_conditional_delete_with_a_lone_backslash_spares_other_resources(client, db_url):
    store_population(client)
    with _engine(db_url) as engine:
        before = current_rows(engine)
        response = client.delete("/fhir/Observation", query_string={"value-string": "\\"})
        after = current_rows(engine)
    assert response.status_code in (204, 400)
    assert after == before


# -- markup -----------------------------------------------------------------------------------

MARKUP = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def test_markup_in_names_round_trips_as_json(client):
    patient = {
        "resourceType": "Patient",
        "id": "xss",
        "name": [{"family": MARKUP[0], "given": [MARKUP[1]]}],
        "identifier": [{"system": NIK, "value": MARKUP[1]}],
    }
    assert put(client, "/fhir/Patient/xss", patient).status_code == 201
    answers = [
        client.get("/fhir/Patient/xss"),
        client.get("/fhir/Patient", query_string={"name": MARKUP[0]}),
        client.get("/fhir/Patient", query_string={"family:exact": MARKUP[0]}),
        client.get("/fhir/Patient", query_string={"identifier": MARKUP[1]}),
        client.get("/fhir/Patient/xss/_history/1"),
    ]
    for response in answers:
        assert response.status_code == 200, response.get_json()
        assert response.content_type.startswith(FHIR_JSON)
        body = response.get_json()
        stored = body if body["resourceType"] == "Patient" else body["entry"][0]["resource"]
        assert stored["name"] == patient["name"]  # byte for byte, not entity-encoded
        assert stored["identifier"] == patient["identifier"]
    raw = answers[0].get_data(as_text=True)  # JSON escapes only the quote
    assert MARKUP[0] in raw and json.dumps(MARKUP[1])[1:-1] in raw
    html = client.get("/fhir/Patient/xss", headers={"Accept": "text/html"})
    assert not html.content_type.startswith("text/html")
    assert html.content_type.startswith(FHIR_JSON)
    assert html.status_code in (200, 406)


@pytest.mark.parametrize(
    "query",
    [
        {MARKUP[0]: "x"},
        {"name:" + MARKUP[1]: "x"},
        {"birthdate": MARKUP[0]},
        {"_sort": MARKUP[1]},
        {"_format": MARKUP[0]},
        {"_count": MARKUP[1]},
    ],
    ids=["name", "modifier", "date", "_sort", "_format", "_count"],
)
def test_errors_echo_markup_only_inside_json(client, query):
    response = client.get("/fhir/Patient", query_string=query)
    assert 400 <= response.status_code < 500
    assert response.content_type.startswith(FHIR_JSON)
    body = json.loads(response.get_data())
    assert body["resourceType"] == "OperationOutcome"
    text = json.dumps(body, ensure_ascii=False)
    echoed = [m for m in MARKUP if m in text or json.dumps(m)[1:-1] in text]
    assert echoed, body  # echoed, but only as a JSON string


def test_unknown_type_with_markup_is_json(client):
    response = client.get("/fhir/" + MARKUP[0].replace("/", "%2F"))
    assert 400 <= response.status_code < 500
    assert response.content_type.startswith(FHIR_JSON)
    assert json.loads(response.get_data())["resourceType"] == "OperationOutcome"
