"""The resident / target register (``sasaran``): each row a Patient claiming ``ilp-patient``.

A resident with a NIK is found again by it (``PUT Patient?identifier=.../nik|{nik}``).  A baby
not yet registered with Dukcapil has only the mother's NIK: it is found by ``nik-ibu`` and the
date of birth (and sex, so that boy-girl twins stay two patients), and carries the ``ilp-mother``
extension as a conditional reference to the mother's NIK, so the mother must be in the same
file or imported before (docs/formats.md).
"""

from __future__ import annotations

from datetime import date
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
    indonesia_today,
)

_GENDER = {"L": "male", "P": "female"}


def patient_query(record: Record) -> str:
    """The criteria that find the resident's Patient: NIK, else nik-ibu + birth date + sex."""
    if "nik" in record:
        return criteria(codes.NIK, record["nik"])
    return (
        f"{criteria(codes.NIK_IBU, record['nik_ibu'])}&birthdate={record['tanggal_lahir']}"
        f"&gender={_GENDER[record['jenis_kelamin']]}"
    )


class SasaranMapper:
    """Resident register rows -> Patient (conditional update on NIK)."""

    name = "sasaran"
    schema_path: Path = SCHEMAS / "sasaran.schema.json"

    def __init__(self, today: date | None = None) -> None:
        # The one impure input, fixed at construction so that map() stays a pure function.
        self.today = today or indonesia_today()

    def rank(self, record: Record) -> int:
        """Residents with a NIK first: a baby's mother is stored before the baby refers to her."""
        return 0 if "nik" in record else 1

    def map(self, record: Record) -> list[Entry]:
        """RecordError for an impossible NIK, desa code or date of birth."""
        self._check(record)
        return [conditional_update(_patient(record), patient_query(record))]

    def _check(self, record: Record) -> None:
        if "nik" in record and (problem := codes.check_nik(record["nik"])):
            raise RecordError(0, "nik", f"{record['nik']}: {problem}")
        if "nik_ibu" in record:
            if problem := codes.check_nik(record["nik_ibu"], woman=True):
                raise RecordError(0, "nik_ibu", f"{record['nik_ibu']}: {problem}")
            if record["nik_ibu"] == record.get("nik"):
                raise RecordError(0, "nik_ibu", "is the resident's own NIK")
        if problem := codes.check_desa(record["kode_desa"]):
            raise RecordError(0, "kode_desa", problem)
        born = date.fromisoformat(record["tanggal_lahir"])
        if born > self.today:
            raise RecordError(0, "tanggal_lahir", f"{born} is in the future")
        if born.year < self.today.year - 125:
            raise RecordError(0, "tanggal_lahir", f"{born} is more than 125 years ago")


def _patient(record: Record) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = []
    extensions: list[dict[str, Any]] = []
    if "nik" in record:
        identifiers.append({"use": "official", "system": codes.NIK, "value": record["nik"]})
    else:
        identifiers.append({"use": "temp", "system": codes.NIK_IBU, "value": record["nik_ibu"]})
        mother = conditional_reference("Patient", criteria(codes.NIK, record["nik_ibu"]))
        extensions.append({"url": codes.ILP_MOTHER, "valueReference": mother})
    if "no_kk" in record:
        identifiers.append({"system": codes.KK, "value": record["no_kk"]})
    resource: dict[str, Any] = {"resourceType": "Patient", "meta": codes.profile("ilp-patient")}
    if extensions:
        resource["extension"] = extensions
    resource["identifier"] = identifiers
    resource["active"] = True
    resource["name"] = [{"use": "official", "text": record["nama"]}]
    if "telepon" in record:
        phone = record["telepon"].replace(" ", "").replace("-", "")
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    resource["gender"] = _GENDER[record["jenis_kelamin"]]
    resource["birthDate"] = record["tanggal_lahir"]
    address: dict[str, Any] = {
        "extension": [
            codes.administrative_code(record["kode_desa"], record.get("rt"), record.get("rw"))
        ],
        "use": "home",
    }
    if "alamat" in record:
        address["line"] = [record["alamat"]]
    address["country"] = "ID"
    resource["address"] = [address]
    return resource
