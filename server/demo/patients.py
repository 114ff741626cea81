"""Patient resources for the members of a household, addressed down to desa, RT and RW.

Each claims the ILP Patient profile: a NIK, or for an infant not yet registered the mother's
NIK (nik-ibu) with the ilp-mother extension naming the mother's Patient (docs/profiles.md).
"""

from __future__ import annotations

from typing import Any

from server.demo import codes
from server.demo.codes import coding, concept, profiled, reference
from server.demo.facilities import DesaSite
from server.demo.people import Household, Person
from server.demo.wilayah import address

_MARRIED = concept(codes.MARITAL_STATUS, "M", "Married")
_WIDOWED = concept(codes.MARITAL_STATUS, "W", "Widowed")
# v2-0131 is the value set Patient.contact.relationship is bound to; MTH says which kin.
_MOTHER = [
    {
        "coding": [
            coding(codes.CONTACT_ROLE, "N", "Next-of-Kin"),
            coding(codes.ROLE_CODE, "MTH", "mother"),
        ],
        "text": "Ibu",
    }
]


def patient_id(person: Person) -> str:
    return f"pat-{person.key}"


def patient_resource(person: Person, household: Household, site: DesaSite) -> dict[str, Any]:
    """A Patient with NIK (or, for an unregistered infant, the mother's NIK) and the family KK."""
    desa = household.desa
    home = address(
        desa.kecamatan.kabupaten,
        desa.kecamatan,
        desa,
        line=f"Dusun {household.dusun}, {desa.kind} {desa.name}",
        use="home",
        rt=household.rt,
        rw=household.rw,
    )
    identifiers = []
    if person.nik is not None:
        identifiers.append({"use": "official", "system": codes.NIK, "value": person.nik})
    elif household.mother.nik is not None:
        identifiers.append({"use": "temp", "system": codes.NIK_IBU, "value": household.mother.nik})
    identifiers.append({"system": codes.KK, "value": household.kk})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id(person),
        "meta": profiled("ilp-patient"),
        "extension": [{"url": codes.CITIZENSHIP_STATUS, "valueCode": "WNI"}],
        "identifier": identifiers,
        "active": True,
        "name": [{"use": "official", "text": person.name, "given": person.name.split()}],
    }
    if person.phone is not None:
        resource["telecom"] = [{"system": "phone", "value": person.phone, "use": "mobile"}]
    resource["gender"] = person.gender
    resource["birthDate"] = person.birth_date.isoformat()
    resource["address"] = [home]
    if person.role in ("ibu", "ayah"):
        resource["maritalStatus"] = _MARRIED
    elif person.role == "lansia":
        resource["maritalStatus"] = _WIDOWED
    if person.is_child:
        mother = household.mother
        resource["extension"].append(
            {"url": codes.ILP_MOTHER, "valueReference": reference("Patient", patient_id(mother))}
        )
        contact: dict[str, Any] = {"relationship": _MOTHER, "name": {"text": mother.name}}
        if mother.phone is not None:
            contact["telecom"] = [{"system": "phone", "value": mother.phone, "use": "mobile"}]
        resource["contact"] = [contact]
    resource["managingOrganization"] = reference("Organization", site.puskesmas.id)
    return resource
