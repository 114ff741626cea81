"""A server with authentication and the audit trail on, a small district, and its clients.

Organizations (partOf tree; Kemendagri village codes on the Puskesmas)::

    kab-3201 (Dinkes Kabupaten, city 3201)
      pkm-a (village 3201010001)
        pos-a1 (a Posyandu)
      pkm-b (village 3201020001)
    pkm-c (village 3301010001, another kabupaten)

Each Puskesmas/Posyandu has a Patient, pkm-a and pkm-b an Encounter and an Observation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from server import create_app
from server.services import clients
from tests.helpers import FHIR_JSON

TOKEN_URL = "/oauth2/v1/accesstoken?grant_type=client_credentials"
ADMIN = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
NIK = "https://fhir.kemkes.go.id/id/nik"

# id: (scopes, organization, region)
CLIENTS = {
    "national": ("system/*.cruds", None, None),
    "pkm-a": ("system/*.cruds", "pkm-a", None),
    "pos-a1": ("system/*.cruds", "pos-a1", None),
    "pkm-b": ("system/*.cruds", "pkm-b", None),
    "kab-3201": ("system/*.rs", None, "3201"),
    "reader-a": ("system/Patient.rs", "pkm-a", None),
    "writer-a": ("system/Observation.write", "pkm-a", None),
    "auditor-a": ("system/AuditEvent.rs", "pkm-a", None),
}


def organization(res_id, part_of=None, village=None, city=None):
    body = {"resourceType": "Organization", "id": res_id, "name": res_id}
    if part_of:
        body["partOf"] = {"reference": f"Organization/{part_of}"}
    codes = [("village", village), ("city", city)]
    parts = [{"url": name, "valueCode": code} for name, code in codes if code]
    if parts:
        body["address"] = [{"extension": [{"url": ADMIN, "extension": parts}]}]
    return body


def patient(res_id, org, family):
    return {
        "resourceType": "Patient",
        "id": res_id,
        "identifier": [{"system": NIK, "value": f"32010{len(res_id)}{res_id.encode().hex()}"}],
        "name": [{"family": family}],
        "managingOrganization": {"reference": f"Organization/{org}"},
    }


def encounter(res_id, org, subject):
    return {
        "resourceType": "Encounter",
        "id": res_id,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{subject}"},
        "serviceProvider": {"reference": f"Organization/{org}"},
    }


def observation(res_id, subject, encounter_id=None, performer=None, value=12.5):
    body = {
        "resourceType": "Observation",
        "id": res_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{subject}"},
        "valueQuantity": {
            "value": value,
            "unit": "kg",
            "system": "http://unitsofmeasure.org",
            "code": "kg",
        },
    }
    if encounter_id:
        body["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if performer:
        body["performer"] = [{"reference": f"Organization/{performer}"}]
    return body


def bundle(kind, *resources_or_requests):
    """A batch/transaction Bundle: resources are PUT to their ids; ("DELETE", url) pairs too."""
    entries = []
    for item in resources_or_requests:
        if isinstance(item, tuple):
            entries.append({"request": {"method": item[0], "url": item[1]}})
        else:
            url = f"{item['resourceType']}/{item['id']}"
            entries.append({"resource": item, "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


DISTRICT = [
    organization("kab-3201", city="3201"),
    organization("pkm-a", "kab-3201", village="3201010001"),
    organization("pos-a1", "pkm-a"),
    organization("pkm-b", "kab-3201", village="3201020001"),
    organization("pkm-c", village="3301010001"),
    patient("pa", "pkm-a", "Ayu"),
    patient("pa1", "pos-a1", "Ani"),
    patient("pb", "pkm-b", "Budi"),
    patient("pc", "pkm-c", "Citra"),
    encounter("ea", "pkm-a", "pa"),
    encounter("eb", "pkm-b", "pb"),
    observation("oa", "pa", "ea"),
    observation("ob", "pb", "eb"),
]


@dataclass
class District:
    """The secured app's test client and a bearer header per client id."""

    client: object
    headers: dict[str, dict[str, str]]
    secrets: dict[str, str]
    app: object

    def as_(self, client_id, **extra):
        return {**self.headers[client_id], "Content-Type": FHIR_JSON, **extra}


def token_response(client, client_id, secret, scope=None):
    data = {"client_id": client_id, "client_secret": secret}
    if scope is not None:
        data["scope"] = scope
    return client.post(TOKEN_URL, data=data)


def bearer(client, client_id, secret, scope=None):
    response = token_response(client, client_id, secret, scope)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def secure_settings(settings):
    return dataclasses.replace(settings, auth=True, audit=True)


@pytest.fixture
def district(secure_settings):
    app = create_app(secure_settings)
    engine = app.extensions["ilp"].engine
    secrets = {
        cid: clients.add_client(engine, cid, scopes=scopes, organization=org, region=region)
        for cid, (scopes, org, region) in CLIENTS.items()
    }
    client = app.test_client()
    headers = {cid: bearer(client, cid, secret) for cid, secret in secrets.items()}
    national = {**headers["national"], "Content-Type": FHIR_JSON}
    for resource in DISTRICT:
        url = f"/fhir/{resource['resourceType']}/{resource['id']}"
        response = client.put(url, json=resource, headers=national)
        assert response.status_code == 201, response.get_json()
    yield District(client, headers, secrets, app)
    engine.dispose()
