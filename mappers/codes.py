"""Identifier systems, code maps and Kemendagri/NIK checks the mappers share (../shared/DOMAIN.md).

The systems come from ``server.demo.codes`` so that imported and demo data agree.
"""

from __future__ import annotations

import re
from typing import Any

from server.demo.codes import (
    ACT_CODE,
    ADMINISTRATIVE_CODE,
    AMBULATORY,
    FACILITY_TYPE,
    HOME_HEALTH,
    ILP,
    ILP_MOTHER,
    KK,
    KLASTER,
    KLASTER_NAMES,
    KODE_FASILITAS,
    LABORATORY,
    LOCATION_PHYSICAL_TYPE,
    LOINC,
    MEASURES,
    NIK,
    NIK_IBU,
    OBSERVATION_CATEGORY,
    ORGANIZATION_TYPE,
    PARTICIPANT_ROLE,
    PARTICIPATION_TYPE,
    PUSTU_ORIGIN,
    SIKLUS,
    SIKLUS_HIDUP,
    SNOMED,
    UCUM,
    VITAL_SIGNS,
    coding,
    concept,
)

__all__ = [
    "ADMINISTRATIVE_CODE",
    "AMBULATORY",
    "DIAGNOSA_KUNJUNGAN",
    "FACILITY_TYPE",
    "FIELD",
    "HOME_HEALTH",
    "ILP_MOTHER",
    "IMUNISASI_POSYANDU",
    "KADER_POSYANDU",
    "KK",
    "KLASTER",
    "KLASTER_NAMES",
    "KODE_FASILITAS",
    "KUNJUNGAN",
    "KUNJUNGAN_IBU_HAMIL",
    "KUNJUNGAN_POSYANDU",
    "KUNJUNGAN_RUMAH",
    "LABORATORY",
    "LOCATION_PHYSICAL_TYPE",
    "LOINC",
    "MEASURES",
    "NIK",
    "NIK_IBU",
    "OBSERVATION_CATEGORY",
    "ORGANIZATION_TYPE",
    "PARTICIPANT_ROLE",
    "PARTICIPATION_TYPE",
    "PEMERIKSAAN_IBU_HAMIL",
    "PENGUKURAN_KUNJUNGAN",
    "PENGUKURAN_KUNJUNGAN_RUMAH",
    "PENGUKURAN_POSYANDU",
    "PUSTU_ORIGIN",
    "SIKLUS",
    "SIKLUS_HIDUP",
    "SKRINING_POSYANDU",
    "SNOMED",
    "TEMUAN_KUNJUNGAN_RUMAH",
    "UCUM",
    "VITAL_SIGNS",
    "VITAMIN_A_POSYANDU",
    "administrative_code",
    "check_desa",
    "check_nik",
    "coding",
    "concept",
    "profile",
]

# Posyandu sheets (mappers/posyandu_balita.py): the visit, its measurements and a kader
# without NIK are found again by these identifiers (docs/formats.md).
KUNJUNGAN_POSYANDU = f"{ILP}/id/kunjungan-posyandu"
PENGUKURAN_POSYANDU = f"{ILP}/id/pengukuran-posyandu"
KADER_POSYANDU = f"{ILP}/id/kader-posyandu"
IMUNISASI_POSYANDU = f"{ILP}/id/imunisasi-posyandu"
VITAMIN_A_POSYANDU = f"{ILP}/id/vitamin-a-posyandu"
# Smoking status and TB symptom screen of the remaja, produktif and lansia sheets
# (mappers/posyandu_dewasa.py): answers, not measurements.
SKRINING_POSYANDU = f"{ILP}/id/skrining-posyandu"
FIELD = coding(ACT_CODE, "FLD", "field")
# The pregnant women's sheet (mappers/posyandu_ibu_hamil.py): the visit, and what was measured
# or given at it, are found again by these identifiers (docs/formats.md).
KUNJUNGAN_IBU_HAMIL = f"{ILP}/id/kunjungan-ibu-hamil"
PEMERIKSAAN_IBU_HAMIL = f"{ILP}/id/pemeriksaan-ibu-hamil"
# The visit exports (mappers/kunjungan.py, kunjungan_rumah.py): a Puskesmas or Pustu visit is
# found again by the facility's own visit number, a home visit by facility, date and person;
# then what was measured, diagnosed or found at it (docs/formats.md).
KUNJUNGAN = f"{ILP}/id/kunjungan"
PENGUKURAN_KUNJUNGAN = f"{ILP}/id/pengukuran-kunjungan"
DIAGNOSA_KUNJUNGAN = f"{ILP}/id/diagnosa-kunjungan"
KUNJUNGAN_RUMAH = f"{ILP}/id/kunjungan-rumah"
PENGUKURAN_KUNJUNGAN_RUMAH = f"{ILP}/id/pengukuran-kunjungan-rumah"
TEMUAN_KUNJUNGAN_RUMAH = f"{ILP}/id/temuan-kunjungan-rumah"

# The 38 province codes (adm-1, ilp-nik-2): Papua's 2022 codes 93-96 included.
_PROVINCE = r"(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-6])"
_DESA = re.compile(rf"^{_PROVINCE}(0[1-9]|[1-6][0-9]|7[1-9]|[89][0-9])[0-9]{{6}}$")
_NIK_PROVINCE = re.compile(rf"^{_PROVINCE}")


def profile(profile_id: str) -> dict[str, Any]:
    """``meta`` claiming the ILP profile ``profile_id``."""
    return {"profile": [f"{ILP}/StructureDefinition/{profile_id}"]}


def check_desa(code: str) -> str | None:
    """Why a 10-digit Kemendagri desa code is impossible, or None (Permendagri 137/2017)."""
    if not _NIK_PROVINCE.match(code):
        return f"{code} does not start with a province code"
    if not _DESA.match(code):
        return f"{code}: digits 3-4 must be a kabupaten (01-69) or kota (71-99)"
    return None


def check_nik(nik: str, *, woman: bool = False) -> str | None:
    """Why a 16-digit NIK is impossible, or None (the ilp-nik-* rules of docs/profiles.md)."""
    day, month = int(nik[6:8]), int(nik[8:10])
    if not _NIK_PROVINCE.match(nik):
        return "digits 1-2 are not a province code"
    if nik[2:4] == "00" or nik[4:6] == "00":
        return "digits 3-6 (kabupaten/kota, kecamatan) must not be 00"
    if woman and not 41 <= day <= 71:
        return "digits 7-8 must be a woman's day of birth (41-71)"
    if not (1 <= day <= 31 or 41 <= day <= 71):
        return "digits 7-8 must be the day of birth, 01-31 (41-71 for women)"
    if not 1 <= month <= 12:
        return "digits 9-10 must be the month of birth, 01-12"
    if nik[12:] == "0000":
        return "digits 13-16 (serial) must not be 0000"
    return None


def administrative_code(desa: str, rt: str | None = None, rw: str | None = None) -> dict[str, Any]:
    """The SATUSEHAT administrativeCode extension of a desa, down to RT/RW when given."""
    parts = [("province", desa[:2]), ("city", desa[:4]), ("district", desa[:6]), ("village", desa)]
    if rt and rw:
        parts += [("rt", rt), ("rw", rw)]
    return {
        "url": ADMINISTRATIVE_CODE,
        "extension": [{"url": url, "valueCode": value} for url, value in parts],
    }
