"""The facility register (``fasilitas``): each row an ILP Organization and its Location.

The profile follows the kind: ``ilp-puskesmas``, ``ilp-pustu`` (also for a Polindes, Puskesdes
or Poskeskel playing the Pustu role, with the ``asal`` type saying what it was), or
``ilp-posyandu`` (docs/profiles.md).  Both resources are found again by the facility code
(``identifier`` in ``kode-fasilitas``) with a conditional update, and ``partOf`` and
``managingOrganization`` are conditional references to a facility code, which the server
resolves inside the transaction (docs/bundles.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mappers import codes
from mappers.base import (
    SCHEMAS,
    Entry,
    Record,
    RecordError,
    conditional_reference,
    conditional_update,
    criteria,
)

# jenis -> (ILP profile, ilp-facility-type code and display, organization-type, physicalType)
_KINDS: dict[str, tuple[str, str, str, tuple[str, str], tuple[str, str]]] = {
    "puskesmas": (
        "ilp-puskesmas", "puskesmas", "Puskesmas", ("prov", "Healthcare Provider"),
        ("bu", "Building"),
    ),
    "pustu": (
        "ilp-pustu", "pustu", "Puskesmas Pembantu (Pustu)", ("prov", "Healthcare Provider"),
        ("bu", "Building"),
    ),
    "posyandu": ("ilp-posyandu", "posyandu", "Posyandu", ("cg", "Community Group"), ("si", "Site")),
}  # fmt: skip
# What a Pustu was established as (ilp-pustu-origin).
_ORIGINS = {
    "pustu": "Pustu",
    "polindes": "Polindes (Pondok Bersalin Desa)",
    "puskesdes": "Puskesdes (Pusat Kesehatan Desa)",
    "poskeskel": "Poskeskel (Pos Kesehatan Kelurahan)",
}
_RANK = {"puskesmas": 0, "posyandu": 2}


def facility_query(kode: str) -> str:
    """The criteria that find a facility's Organization (or Location) by its code."""
    return criteria(codes.KODE_FASILITAS, kode)


class FasilitasMapper:
    """Facility register rows -> Organization + Location (conditional on the facility code)."""

    name = "fasilitas"
    schema_path: Path = SCHEMAS / "fasilitas.schema.json"

    def rank(self, record: Record) -> int:
        """Puskesmas first, then Pustu, then Posyandu: a parent is stored before its children."""
        return _RANK.get(record["jenis"], 1)

    def map(self, record: Record) -> list[Entry]:
        """RecordError when the desa code or the parent is impossible."""
        if problem := codes.check_desa(record["kode_desa"]):
            raise RecordError(0, "kode_desa", problem)
        parent = record.get("kode_induk")
        if parent is not None and parent == record["kode"]:
            raise RecordError(0, "kode_induk", "a facility cannot be its own parent")
        query = facility_query(record["kode"])
        return [
            conditional_update(_organization(record), query),
            conditional_update(_location(record), query),
        ]


def _organization(record: Record) -> dict[str, Any]:
    jenis = record["jenis"]
    profile, code, display, org_type, _ = _KINDS.get(jenis, _KINDS["pustu"])
    types = [
        codes.concept(codes.FACILITY_TYPE, code, display),
        codes.concept(codes.ORGANIZATION_TYPE, *org_type),
    ]
    if profile == "ilp-pustu":
        types.insert(1, codes.concept(codes.PUSTU_ORIGIN, jenis, _ORIGINS[jenis]))
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "meta": codes.profile(profile),
        "identifier": [
            {"use": "official", "system": codes.KODE_FASILITAS, "value": record["kode"]}
        ],
        "active": record.get("aktif", True),
        "type": types,
        "name": record["nama"],
        "address": [_address(record)],
    }
    if "kode_induk" in record:
        resource["partOf"] = conditional_reference(
            "Organization", facility_query(record["kode_induk"])
        )
    return resource


def _location(record: Record) -> dict[str, Any]:
    physical = _KINDS.get(record["jenis"], _KINDS["pustu"])[4]
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "meta": codes.profile("ilp-location"),
        "identifier": [{"system": codes.KODE_FASILITAS, "value": record["kode"]}],
        "status": "active" if record.get("aktif", True) else "inactive",
        "name": record["nama"],
        "mode": "instance",
        "address": _address(record),
        "physicalType": codes.concept(codes.LOCATION_PHYSICAL_TYPE, *physical),
        "managingOrganization": conditional_reference(
            "Organization", facility_query(record["kode"])
        ),
    }
    if "lintang" in record:
        resource["position"] = {"longitude": record["bujur"], "latitude": record["lintang"]}
    return resource


def _address(record: Record) -> dict[str, Any]:
    address: dict[str, Any] = {
        "extension": [codes.administrative_code(record["kode_desa"])],
        "use": "work",
    }
    if "alamat" in record:
        address["line"] = [record["alamat"]]
    address["country"] = "ID"
    return address
