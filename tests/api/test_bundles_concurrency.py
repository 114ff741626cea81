"""Eight EMR clients at once: transactions that create-or-find the same Patient.

Each transaction creates the Patient conditionally (``ifNoneExist`` on the NIK), links
an Observation to it by ``urn:uuid`` and another by a conditional reference.  However the
eight interleave, there must be one Patient, every Observation must point at it, and no
transaction may fail or deadlock.  Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading

from tests.api.test_bundles import NIK, bundle, entry, ids_of, observation, post_bundle, urn
from tests.helpers import patient

CLIENTS = 8
NIK_VALUE = "3201234567899999"


def _visit():
    query = f"identifier={NIK}|{NIK_VALUE}"
    child = urn()
    return bundle(
        "transaction",
        entry("POST", "Patient", patient(nik=NIK_VALUE), child, ifNoneExist=query),
        entry("POST", "Observation", observation(child, value=11.0)),
        entry("POST", "Observation", observation(f"Patient?{query}", value=11.5)),
    )


def test_concurrent_transactions_with_one_conditional_patient_create_no_duplicates(app):
    start = threading.Barrier(CLIENTS)
    responses: list = [None] * CLIENTS

    def send(slot):
        client = app.test_client()
        start.wait(10)
        responses[slot] = post_bundle(client, _visit())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a transaction hung"

    assert [r.status_code for r in responses] == [200] * CLIENTS, [
        r.get_json() for r in responses if r.status_code != 200
    ]
    client = app.test_client()
    found = client.get(f"/fhir/Patient?identifier={NIK}|{NIK_VALUE}").get_json()
    assert len(found.get("entry", [])) == 1, "duplicate Patients were created"
    only = f"Patient/{found['entry'][0]['resource']['id']}"
    for response in responses:
        patient_ref, *observations = ids_of(response)
        assert patient_ref == only
        for reference in observations:
            stored = client.get(f"/fhir/{reference}").get_json()
            assert stored["subject"]["reference"] == only
    created = sum(
        r.get_json()["entry"][0]["response"]["status"] == "201 Created" for r in responses
    )
    assert created == 1
