"""The PWS indicators on a population small enough to count by hand (docs/indicators.md).

Kabupaten 5260, desa A (5260011001, Posyandu X) and desa B (5260011002, Posyandu Y), one
Puskesmas; October 2026.  Each comment says who counts where.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
import sqlalchemy as sa

from server.fhir.growth import z_scores
from server.services import indicators
from server.services.indicators import derive, summary

ILP = "https://fhir.ilp-gateway.id"
ADMIN = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
LOINC = "http://loinc.org"
DESA_A, DESA_B = "5260011001", "5260011002"
MONTH = "2026-10"


def address(village):
    parts = [("province", "52"), ("city", "5260"), ("district", "526001"), ("village", village)]
    return {
        "use": "home",
        "extension": [{"url": ADMIN, "extension": [{"url": k, "valueCode": v} for k, v in parts]}],
    }


def organization(org_id, kind, village, parent=None):
    org = {
        "resourceType": "Organization",
        "id": org_id,
        "name": f"{kind.capitalize()} {org_id}",
        "type": [{"coding": [{"system": f"{ILP}/CodeSystem/ilp-facility-type", "code": kind}]}],
        "address": [address(village)],
    }
    if parent:
        org["partOf"] = {"reference": f"Organization/{parent}"}
    return org


def wilayah(code, name):
    return {
        "resourceType": "Location",
        "id": f"desa-{code}",
        "meta": {"profile": [f"{ILP}/StructureDefinition/ilp-wilayah"]},
        "name": name,
        "address": address(code),
    }


def patient(pid, gender, birth, village):
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"text": pid.upper()}],
        "gender": gender,
        "birthDate": birth,
        "address": [address(village)],
    }


def encounter(eid, pid, day, facility, stage=None, home=False):
    enc = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "HH" if home else "AMB",
        },
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": f"{day}T09:00:00+08:00"},
        "serviceProvider": {"reference": f"Organization/{facility}"},
    }
    if stage:
        enc["type"] = [
            {"coding": [{"system": f"{ILP}/CodeSystem/ilp-siklus-hidup", "code": stage}]}
        ]
    return enc


def observation(oid, eid, pid, day, code, value=None, unit=None, components=None, extra=None):
    obs = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code}] + (extra or [])},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{eid}"},
        "effectiveDateTime": f"{day}T09:05:00+08:00",
        "performer": [{"reference": "Practitioner/bidan-1"}],
    }
    if value is not None:
        obs["valueQuantity"] = {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    if components:
        obs["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": c}]},
                "valueQuantity": {
                    "value": v,
                    "unit": "mm[Hg]",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            }
            for c, v in components
        ]
    return obs


LYING = {"system": LOINC, "code": "8306-3"}
STANDING = {"system": LOINC, "code": "8308-9"}


def child_visit(pid, day, posyandu, weight, height, position):
    eid = f"enc-{pid}-{day}"
    return [
        encounter(eid, pid, day, posyandu, "balita"),
        observation(f"w-{pid}-{day}", eid, pid, day, "29463-7", weight, "kg"),
        observation(f"h-{pid}-{day}", eid, pid, day, "8302-2", height, "cm", extra=[position]),
    ]


def population():
    found = [
        wilayah(DESA_A, "Desa A"),
        wilayah(DESA_B, "Desa B"),
        organization("pkm", "puskesmas", DESA_A),
        organization("pos-x", "posyandu", DESA_A, "pkm"),
        organization("pos-y", "posyandu", DESA_B, "pkm"),
        # desa A: c1 stunted (severely) and underweight, c2 well, c3 never weighed, c4 six
        patient("c1", "female", "2025-10-15", DESA_A),
        patient("c2", "male", "2024-08-01", DESA_A),
        patient("c3", "male", "2026-04-01", DESA_A),
        patient("c4", "female", "2020-01-01", DESA_A),
        patient("teen", "female", "2015-03-03", DESA_A),
        patient("m1", "female", "1995-05-05", DESA_A),
        patient("a1", "male", "1960-01-01", DESA_A),
        # desa B: c5 wasted and underweight; m2 pregnant (first visit in October), a2 unseen
        patient("c5", "male", "2025-04-10", DESA_B),
        patient("m2", "female", "1998-02-02", DESA_B),
        patient("a2", "male", "1980-06-06", DESA_B),
    ]
    found += child_visit("c1", "2026-10-05", "pos-x", 6.5, 64.0, LYING)
    found += child_visit("c2", "2026-10-05", "pos-x", 12.0, 87.0, STANDING)
    found += child_visit("c5", "2026-10-07", "pos-y", 8.2, 82.0, LYING)
    found.append(encounter("home-c1", "c1", "2026-10-20", "pkm", home=True))
    # m1: antenatal visits in March, April, May, June and October: K4, not K1 nor K6
    for day in ("2026-03-10", "2026-04-10", "2026-05-10", "2026-06-10", "2026-10-02"):
        found.append(encounter(f"anc-m1-{day}", "m1", day, "pkm", "ibu"))
    found.append(
        observation("lila-m1", "anc-m1-2026-10-02", "m1", "2026-10-02", "56072-2", 22.0, "cm")
    )
    found.append(
        observation("hb-m1", "anc-m1-2026-10-02", "m1", "2026-10-02", "718-7", 10.5, "g/dL")
    )
    found.append(
        observation(
            "bp-m1",
            "anc-m1-2026-10-02",
            "m1",
            "2026-10-02",
            "85354-9",
            components=[("8480-6", 120), ("8462-4", 80)],
        )
    )
    found.append(encounter("anc-m2", "m2", "2026-10-12", "pkm", "ibu"))
    found.append(observation("lila-m2", "anc-m2", "m2", "2026-10-12", "56072-2", 25.0, "cm"))
    found.append(
        observation(
            "bp-m2",
            "anc-m2",
            "m2",
            "2026-10-12",
            "85354-9",
            components=[("8480-6", 110), ("8462-4", 70)],
        )
    )
    found.append(encounter("enc-a1", "a1", "2026-10-05", "pos-x", "dewasa"))
    found.append(
        observation(
            "bp-a1",
            "enc-a1",
            "a1",
            "2026-10-05",
            "85354-9",
            components=[("8480-6", 150), ("8462-4", 95)],
        )
    )
    found.append(observation("glu-a1", "enc-a1", "a1", "2026-10-05", "2339-0", 210, "mg/dL"))
    return found


@pytest.fixture
def loaded(app):
    client = app.test_client()
    for resource in population():
        response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
        assert response.status_code in (200, 201), response.get_json()
    return app


def values(row):
    return {code: (v.numerator, v.denominator) for code, v in row.values.items()}


EXPECTED_A = {
    "balita-ditimbang": (2, 3),  # c1, c2 weighed of c1, c2, c3 (c4 is six)
    "stunting": (1, 2),  # c1
    "stunting-berat": (1, 2),
    "underweight": (1, 2),
    "wasting": (0, 2),
    "overweight": (0, 2),
    "k1": (0, 1),  # m1 first came in March
    "k4": (1, 1),  # five visits in the last 280 days
    "k6": (0, 1),
    "kek": (1, 1),  # LILA 22.0
    "anemia-bumil": (1, 1),  # Hb 10.5
    "skrining-hipertensi": (2, 2),  # m1 and a1 (the teen is not 15)
    "hipertensi": (1, 2),  # a1 150/95
    "skrining-diabetes": (1, 2),
    "diabetes": (1, 1),  # a1 210 mg/dL
    "kunjungan-rumah": (1, None),
}
EXPECTED_B = {
    "balita-ditimbang": (1, 1),
    "stunting": (0, 1),
    "stunting-berat": (0, 1),
    "underweight": (1, 1),  # c5
    "wasting": (1, 1),
    "overweight": (0, 1),
    "k1": (1, 1),  # m2's first visit
    "k4": (0, 1),
    "k6": (0, 1),
    "kek": (0, 1),
    "skrining-hipertensi": (1, 2),  # m2 of m2 and a2
    "hipertensi": (0, 1),
    "skrining-diabetes": (0, 2),
}


def test_each_desa_counts_as_by_hand(loaded):
    context = loaded.extensions["ilp"]
    found = indicators.overview(context, MONTH)
    rows = {row.area.code: row for row in found.rows}
    assert set(rows) == {DESA_A, DESA_B}
    assert rows[DESA_A].area.name == "Desa A"
    assert values(rows[DESA_A]) == EXPECTED_A
    assert values(rows[DESA_B]) == EXPECTED_B
    assert values(found.total)["stunting"] == (1, 3)
    assert values(found.total)["balita-ditimbang"] == (3, 4)
    assert indicators.months(context)[0] == MONTH


def test_posyandu_puskesmas_and_kabupaten_levels(loaded):
    context = loaded.extensions["ilp"]
    desa_a = indicators.find_area(context, "desa", DESA_A)
    by_posyandu = {
        r.area.code: values(r) for r in indicators.overview(context, MONTH, "posyandu", desa_a).rows
    }
    # c1, c2 and a1 were seen at Posyandu X; c3 nowhere; m1 only at the Puskesmas
    assert by_posyandu["pos-x"]["balita-ditimbang"] == (2, 2)
    assert by_posyandu["pos-x"]["skrining-hipertensi"] == (1, 1)
    assert by_posyandu[""]["balita-ditimbang"] == (0, 1)
    puskesmas = indicators.overview(context, MONTH, "puskesmas").rows
    assert [(r.area.code, values(r)["stunting"]) for r in puskesmas] == [("pkm", (1, 3))]
    kabupaten = indicators.overview(context, MONTH, "kabupaten").rows
    assert [(r.area.code, values(r)["underweight"]) for r in kabupaten] == [("5260", (2, 3))]


def test_derived_zscores_follow_the_measurements(loaded):
    client = loaded.test_client()
    ids = {i: derive.derived_id(i, "c1", "2026-10-05") for i in ("lhfa", "wfa", "wflh", "bfa")}
    expected = z_scores("female", date(2025, 10, 15), date(2026, 10, 5), 6.5, 64.0, True).rounded()
    for indicator, res_id in ids.items():
        body = client.get(f"/fhir/Observation/{res_id}").get_json()
        assert body["valueQuantity"]["value"] == expected[indicator]
        assert body["subject"] == {"reference": "Patient/c1"}
    hfa = client.get(f"/fhir/Observation/{ids['lhfa']}").get_json()
    assert hfa["derivedFrom"] == [{"reference": "Observation/h-c1-2026-10-05"}]
    assert hfa["code"]["coding"][0]["code"] == "height-for-age"
    # searchable like any Observation
    search = client.get(
        f"/fhir/Observation?subject=Patient/c1&code={ILP}/CodeSystem/ilp-obs-growth-indicator|"
        "height-for-age"
    ).get_json()
    assert [e["resource"]["id"] for e in search["entry"]] == [ids["lhfa"]]

    # a corrected birth date changes the z-scores; a deleted length removes those needing it
    c1 = client.get("/fhir/Patient/c1").get_json()
    assert client.put("/fhir/Patient/c1", json={**c1, "birthDate": "2025-06-15"}).status_code == 200
    older = z_scores("female", date(2025, 6, 15), date(2026, 10, 5), 6.5, 64.0, True).rounded()
    assert (
        client.get(f"/fhir/Observation/{ids['wfa']}").get_json()["valueQuantity"]["value"]
        == older["wfa"]
    )
    assert client.delete("/fhir/Observation/h-c1-2026-10-05").status_code in (200, 204)
    assert client.get(f"/fhir/Observation/{ids['lhfa']}").status_code == 410
    assert client.get(f"/fhir/Observation/{ids['wflh']}").status_code == 410
    assert client.get(f"/fhir/Observation/{ids['wfa']}").status_code == 200


def test_a_zscore_received_from_below_replaces_the_servers_own(loaded):
    client = loaded.test_client()
    context = loaded.extensions["ilp"]
    ours = {i: derive.derived_id(i, "c1", "2026-10-05") for i in ("lhfa", "wfa")}
    received = {  # as the Puskesmas node derived it, sent up under an id of this server's
        "resourceType": "Observation",
        "id": "from-pkm-haz-c1",
        "status": "final",
        "code": {
            "coding": [
                {"system": f"{ILP}/CodeSystem/ilp-obs-growth-indicator", "code": "height-for-age"}
            ]
        },
        "subject": {"reference": "Patient/c1"},
        "effectiveDateTime": "2026-10-05T09:05:00+08:00",
        "valueQuantity": {
            "value": -3.6,
            "unit": "Z-score",
            "system": "http://unitsofmeasure.org",
            "code": "{Z-score}",
        },
        "derivedFrom": [{"reference": "Observation/h-c1-2026-10-05"}],
    }
    assert client.put("/fhir/Observation/from-pkm-haz-c1", json=received).status_code == 201
    assert client.get(f"/fhir/Observation/{ours['lhfa']}").status_code == 410
    assert client.get(f"/fhir/Observation/{ours['wfa']}").status_code == 200  # none received
    search = client.get(
        f"/fhir/Observation?subject=Patient/c1&code={ILP}/CodeSystem/ilp-obs-growth-indicator|"
        "height-for-age"
    ).get_json()
    assert [e["resource"]["id"] for e in search["entry"]] == ["from-pkm-haz-c1"]
    assert desa_values(context)[DESA_A]["stunting-berat"] == (1, 2)  # counted once, from it

    assert client.delete("/fhir/Observation/from-pkm-haz-c1").status_code in (200, 204)
    assert client.get(f"/fhir/Observation/{ours['lhfa']}").status_code == 200  # derived again


def test_derived_zscores_meet_their_profiles_and_are_queued_for_sync(loaded):
    context = loaded.extensions["ilp"]
    for indicator in ("lhfa", "wfa", "wflh", "bfa"):
        res_id = derive.derived_id(indicator, "c5", "2026-10-07")
        with context.unit_of_work() as uow:
            content = uow.store.current("Observation", res_id).content
        errors = [i for i in context.validation.validate(content) if i.severity == "error"]
        assert errors == [], (indicator, errors)
    with context.engine.connect() as connection:
        queued = connection.execute(
            sa.text("SELECT count(*) FROM sync_outbox WHERE res_id LIKE 'zscore-%'")
        ).scalar()
    assert queued == 3 * 4  # c1, c2, c5: four z-scores each


def test_the_trend_leaves_months_without_records_empty(loaded):
    weighed = dict(indicators.trend(loaded.extensions["ilp"], MONTH)["balita-ditimbang"])
    assert list(weighed)[-1] == MONTH and len(weighed) == 12
    assert weighed[MONTH].rate == pytest.approx(100 * 3 / 4)  # c1, c2, c5 of c1, c2, c3, c5
    assert weighed["2026-06"].rate == 0  # m1's visit: a month with records, nobody weighed
    assert weighed["2026-09"].rate is None  # no record at all: no 0 %
    assert weighed["2025-11"].rate is None


def test_a_write_makes_the_month_count_again(loaded):
    context = loaded.extensions["ilp"]
    assert values(indicators.overview(context, MONTH).rows[0])["balita-ditimbang"] == (2, 3)
    client = loaded.test_client()
    for resource in child_visit("c3", "2026-10-05", "pos-x", 7.0, 66.0, LYING):
        client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert values(indicators.overview(context, MONTH).rows[0])["balita-ditimbang"] == (3, 3)


def desa_values(context, month=MONTH, level="desa"):
    return {row.area.code: values(row) for row in indicators.overview(context, month, level).rows}


def test_a_child_who_moves_desa_moves_out_of_every_counted_month(loaded):
    context = loaded.extensions["ilp"]
    before = desa_values(context)
    assert before[DESA_A]["stunting"] == (1, 2) and before[DESA_B]["stunting"] == (0, 1)
    moved = patient("c1", "female", "2025-10-15", DESA_B)
    assert loaded.test_client().put("/fhir/Patient/c1", json=moved).status_code == 200
    after = desa_values(context)
    assert after[DESA_A]["stunting"] == (0, 1)  # c2 left
    assert after[DESA_B]["stunting"] == (1, 2)  # c1 joins c5
    assert after[DESA_A]["balita-ditimbang"] == (1, 2)  # c2 of c2, c3
    assert after[DESA_B]["balita-ditimbang"] == (2, 2)
    assert "kunjungan-rumah" not in after[DESA_A]  # the home visit went with c1
    assert after[DESA_B]["kunjungan-rumah"] == (1, None)
    assert_counted_as_whole(context)


def test_a_back_dated_antenatal_visit_counts_in_the_later_months(loaded):
    context = loaded.extensions["ilp"]
    assert desa_values(context)[DESA_B]["k4"] == (0, 1)  # October counted: m2's one visit
    client = loaded.test_client()
    for day in ("2026-07-01", "2026-08-01", "2026-09-01"):  # entered late, from the book
        resource = encounter(f"anc-m2-{day}", "m2", day, "pkm", "ibu")
        assert client.put(f"/fhir/Encounter/{resource['id']}", json=resource).status_code == 201
    october = desa_values(context)[DESA_B]
    assert october["k4"] == (1, 1)  # four visits in the last 280 days
    assert october["k1"] == (0, 1)  # her first visit was in July
    assert desa_values(context, "2026-07")[DESA_B]["k1"] == (1, 1)
    assert indicators.months(context) == [
        "2026-10",
        "2026-09",
        "2026-08",
        "2026-07",
        "2026-06",
        "2026-05",
        "2026-04",
        "2026-03",
    ]
    assert_counted_as_whole(context)


def test_a_child_seen_at_another_posyandu_counts_there_in_every_month(loaded):
    context = loaded.extensions["ilp"]
    assert desa_values(context, level="posyandu")["pos-x"]["balita-ditimbang"] == (2, 2)
    client = loaded.test_client()
    for resource in child_visit("c2", "2026-11-05", "pos-y", 12.2, 87.5, STANDING):
        client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    october = desa_values(context, level="posyandu")
    assert october["pos-x"]["balita-ditimbang"] == (1, 1)  # c1 (c3 was never seen there)
    assert october["pos-y"]["balita-ditimbang"] == (2, 2)  # c5 and c2, now seen there
    assert desa_values(context)[DESA_A]["balita-ditimbang"] == (2, 3)  # still desa A
    assert_counted_as_whole(context)


def assert_counted_as_whole(context):
    """What the recounts by desa and the changes in place left equals a count from scratch."""
    indicators.trend(context, MONTH)
    select = sa.text("SELECT * FROM ind_summary ORDER BY month, village, posyandu, indicator")
    with context.engine.begin() as connection:
        kept = connection.execute(select).all()
        counted = connection.execute(sa.text("SELECT month FROM ind_month")).scalars().all()
        connection.execute(sa.text("DELETE FROM ind_summary"))
        connection.execute(sa.text("DELETE FROM ind_month"))
    summary.refresh(context.engine, counted)
    with context.engine.connect() as connection:
        assert connection.execute(select).all() == kept


def test_registering_people_changes_the_counted_months_in_place(loaded):
    context = loaded.extensions["ilp"]
    indicators.trend(context, MONTH)  # the twelve months to October counted
    client = loaded.test_client()
    for resource in (
        patient("c6", "female", "2026-01-01", DESA_A),  # a new child, not yet weighed
        patient("c4", "female", "2022-01-01", DESA_A),  # six no more: a birth date corrected
        patient("a3", "male", "1970-07-07", DESA_B),  # a new adult
    ):
        assert client.put(f"/fhir/Patient/{resource['id']}", json=resource).status_code < 300
    with context.engine.connect() as connection:
        query = sa.text("SELECT count(*) FROM ind_change NATURAL JOIN ind_month")
        assert connection.execute(query).scalar() == 0  # no counted month's desa to recount
    october = desa_values(context)
    assert october[DESA_A]["balita-ditimbang"] == (2, 5)  # c1, c2 of c1, c2, c3, c4, c6
    assert october[DESA_B]["skrining-hipertensi"] == (1, 3)  # m2 of m2, a2, a3
    assert desa_values(context, "2025-12")[DESA_A]["balita-ditimbang"] == (0, 3)  # not c6 yet
    assert_counted_as_whole(context)


def test_concurrent_pages_count_a_stale_month_once(loaded):
    context = loaded.extensions["ilp"]
    desa_values(context)
    client = loaded.test_client()
    for resource in child_visit("c3", "2026-10-05", "pos-x", 7.0, 66.0, LYING):
        client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    with ThreadPoolExecutor(4) as pool:
        pages = list(pool.map(lambda _: desa_values(context), range(4)))
    assert all(page[DESA_A]["balita-ditimbang"] == (3, 3) for page in pages)
    with context.engine.connect() as connection:
        query = sa.text("SELECT count(*) FROM ind_change WHERE month = :m")
        assert connection.execute(query, {"m": MONTH}).scalar() == 0


def test_measure_reports_equal_the_counts(loaded):
    client = loaded.test_client()
    report = client.get(
        "/fhir/Measure/stunting/$evaluate-measure?periodStart=2026-10-01&periodEnd=2026-10-31"
        f"&subject=Location/desa-{DESA_A}"
    ).get_json()
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
    assert counts == {"initial-population": 2, "denominator": 2, "numerator": 1}
    assert report["group"][0]["measureScore"]["value"] == 50.0
    assert report["subject"]["reference"] == f"Location/desa-{DESA_A}"
    bundle = client.get("/fhir/MeasureReport?period=2026-10&measure=kunjungan-rumah").get_json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["group"][0]["population"][0]["count"] == 1
    refused = client.get(
        "/fhir/Measure/k4/$evaluate-measure?periodStart=2026-09-01&periodEnd=2026-10-31"
    )
    assert refused.status_code == 400
    assert client.get("/fhir/Measure/nothing").status_code == 404
