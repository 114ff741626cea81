"""Small request helpers for the Flask test client."""

from __future__ import annotations

FHIR_JSON = "application/fhir+json"


def post(client, path, resource, **headers):
    return client.post(path, json=resource, headers={"Content-Type": FHIR_JSON, **headers})


def put(client, path, resource, **headers):
    return client.put(path, json=resource, headers={"Content-Type": FHIR_JSON, **headers})


def patient(nik="3201234567890001", family="Siti", **extra):
    """A minimal Patient with an NIK identifier (SATUSEHAT's system)."""
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.kemkes.go.id/id/nik", "value": nik}],
        "name": [{"family": family}],
        **extra,
    }


def created_id(response):
    """The id from the Location header of a 201 (``.../Type/id/_history/1``)."""
    return response.headers["Location"].split("/")[-3]
