"""Code systems, identifier systems and codings the demo district uses (../shared/DOMAIN.md)."""

from __future__ import annotations

from typing import Any

NIK = "https://fhir.kemkes.go.id/id/nik"
NIK_IBU = "https://fhir.kemkes.go.id/id/nik-ibu"
KK = "https://fhir.kemkes.go.id/id/kk"
ADMINISTRATIVE_CODE = "https://fhir.kemkes.go.id/r4/StructureDefinition/administrativeCode"
CITIZENSHIP_STATUS = "https://fhir.kemkes.go.id/r4/StructureDefinition/citizenshipStatus"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
LOCATION_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
MARITAL_STATUS = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"

# The ILP implementation guide (profiles/, docs/profiles.md).
ILP = "https://fhir.ilp-gateway.id"
KODE_FASILITAS = f"{ILP}/id/kode-fasilitas"
ILP_MOTHER = f"{ILP}/StructureDefinition/ilp-mother"
FACILITY_TYPE = f"{ILP}/CodeSystem/ilp-facility-type"
PUSTU_ORIGIN = f"{ILP}/CodeSystem/ilp-pustu-origin"
KLASTER = f"{ILP}/CodeSystem/ilp-klaster"
SIKLUS_HIDUP = f"{ILP}/CodeSystem/ilp-siklus-hidup"
PARTICIPANT_ROLE = f"{ILP}/CodeSystem/ilp-participant-role"

# Every demo resource carries the HL7 "test health data" label, so it can be told from real
# data (and searched with _security) wherever it ends up.
META = {"security": [{"system": ACT_REASON, "code": "HTEST", "display": "test health data"}]}


def profiled(profile: str) -> dict[str, Any]:
    """``meta`` of a demo resource that claims the ILP profile ``profile`` (an id)."""
    return {**META, "profile": [f"{ILP}/StructureDefinition/{profile}"]}


def sys_ids(kind: str, org_id: str) -> str:
    """A per-facility identifier system: http://sys-ids.kemkes.go.id/{kind}/{org_id}."""
    return f"http://sys-ids.kemkes.go.id/{kind}/{org_id}"


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept of one coding, with ``text`` when given."""
    value: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        value["text"] = text
    return value


def reference(resource_type: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{res_id}"}


# LOINC code -> (display, Indonesian text, UCUM unit).
MEASURES: dict[str, tuple[str, str, str]] = {
    "29463-7": ("Body weight", "Berat badan", "kg"),
    "8302-2": ("Body height", "Tinggi/panjang badan", "cm"),
    "9843-4": ("Head Occipital-frontal circumference", "Lingkar kepala", "cm"),
    "56072-2": ("Mid upper arm circumference", "Lingkar lengan atas (LILA)", "cm"),
    "85354-9": ("Blood pressure panel with all children optional", "Tekanan darah", ""),
    "8480-6": ("Systolic blood pressure", "Sistolik", "mm[Hg]"),
    "8462-4": ("Diastolic blood pressure", "Diastolik", "mm[Hg]"),
    "718-7": ("Hemoglobin [Mass/volume] in Blood", "Hemoglobin", "g/dL"),
    "8280-0": ("Waist Circumference at umbilicus by Tape measure", "Lingkar perut", "cm"),
    "2339-0": ("Glucose [Mass/volume] in Blood", "Gula darah", "mg/dL"),
    "8867-4": ("Heart rate", "Nadi", "/min"),
    "8310-5": ("Body temperature", "Suhu tubuh", "Cel"),
    "9279-1": ("Respiratory rate", "Frekuensi napas", "/min"),
    "11884-4": ("Gestational age Estimated", "Usia kehamilan", "wk"),
}
LYING_LENGTH = coding(LOINC, "8306-3", "Body height --lying")

VITAL_SIGNS = [concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")]
LABORATORY = [concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")]

AMBULATORY = coding(ACT_CODE, "AMB", "ambulatory")
HOME_HEALTH = coding(ACT_CODE, "HH", "home health")
# The bidan desa attends every demo visit: v3 ATND for SATUSEHAT, refined by the ILP role.
BIDAN_ATTENDER = [
    {
        "coding": [
            coding(PARTICIPATION_TYPE, "ATND", "attender"),
            coding(PARTICIPANT_ROLE, "bidan", "Bidan"),
        ],
        "text": "Bidan",
    }
]

# ILP life-cycle stage (siklus hidup) -> display and the cluster (klaster) that serves it.
SIKLUS: dict[str, tuple[str, str]] = {
    "ibu": ("Ibu hamil, bersalin dan nifas", "2"),
    "balita": ("Bayi, balita dan anak prasekolah", "2"),
    "usia-sekolah-remaja": ("Anak usia sekolah dan remaja", "2"),
    "dewasa": ("Usia dewasa", "3"),
    "lansia": ("Lanjut usia (lansia)", "3"),
}
KLASTER_NAMES = {"2": "Klaster 2: Ibu dan Anak", "3": "Klaster 3: Usia Dewasa dan Lansia"}

# Practitioner occupations (SNOMED CT) with the Indonesian title, prefix and degree.
DOKTER = ("158965000", "Medical practitioner", "Dokter", "dr.", "")
BIDAN = ("309453006", "Registered midwife", "Bidan", "Bd.", "S.Tr.Keb")
PERAWAT = ("224535009", "Registered nurse", "Perawat", "Ns.", "S.Kep")
