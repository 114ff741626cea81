"""The demo district (``server/demo``) as the registers and sheets a district keeps.

``district.generate`` yields FHIR resources; this module turns them back into the rows a
Puskesmas, Pustu or kader would have written: the facility register, the resident register
and the Posyandu sheets.  Importing those files through the mappers (``ilp import``) is then
the path real data takes, which ``bench/import.py`` measures.  Visits a format does not cover
yet are counted as skipped, not invented.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from mappers import codes
from mappers.pemberian import months
from mappers.reading import load_schema
from server.demo.codes import ADMINISTRATIVE_CODE

Row = dict[str, Any]
_KADER_NAMES = (
    "Baiq Nurhayati", "Sri Wahyuni", "Ni Made Sukerti", "Hj. Rohani", "Lalu Saparudin",
    "Nurul Hidayah", "Siti Maryam", "Dewi Lestari", "Ratna Sari", "Fatimah Zahra",
)  # fmt: skip
_ORIGINS = {"polindes", "puskesdes", "poskeskel"}
# The national schedule by age in whole months, as the demo's Posyandu give it (the FHIR demo
# records no immunisations; the sheets do, so an import carries them).
_SCHEDULE = {
    1: "BCG, Polio 1",
    2: "DPT-HB-Hib 1, Polio 2, PCV 1, RV 1",
    3: "DPT-HB-Hib 2, Polio 3, PCV 2, RV 2",
    4: "DPT-HB-Hib 3, Polio 4, IPV 1, RV 3",
    9: "MR 1, IPV 2",
    12: "PCV 3",
    18: "DPT-HB-Hib 4, MR 2",
}
_VITAMIN_A_MONTHS = (2, 8)  # February and August


def records(resources: Iterable[dict[str, Any]]) -> Iterator[tuple[str, Row]]:
    """(format, row) for every facility, resident and visit of the demo stream, in order."""
    renderer = _Renderer()
    visit: list[dict[str, Any]] = []
    for resource in resources:
        kind = resource["resourceType"]
        if kind == "Observation" and visit:
            visit.append(resource)
            continue
        if visit:
            yield from renderer.visit(visit)
            visit = []
        if kind == "Encounter":
            visit = [resource]
        elif kind == "Organization":
            renderer.organization(resource)
        elif kind == "Location":
            renderer.location(resource)
        elif kind == "Patient":
            yield from renderer.patient(resource)
        elif kind == "Practitioner":
            renderer.practitioner(resource)
    if visit:
        yield from renderer.visit(visit)


def write_files(
    resources: Iterable[dict[str, Any]], folder: Path
) -> tuple[dict[str, Path], Counter[str]]:
    """Each format's rows as ``folder/{format}.csv`` (columns in schema order); the files
    and the rows written per format."""
    from mappers import mapper_for

    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[Row]] = {}
    for name, row in records(resources):
        rows.setdefault(name, []).append(row)
    files, counts = {}, Counter[str]()
    for name, found in rows.items():
        columns = list(load_schema(mapper_for(name).schema_path).schema["properties"])
        used = [c for c in columns if any(c in row for row in found)]
        files[name] = folder / f"{name}.csv"
        with files[name].open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, used, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in row.items()} for row in found)
        counts[name] = len(found)
    return files, counts


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "ya" if value else "tidak"
    return str(value)


class _Renderer:
    """Remembers facilities and residents, to fill the visit sheets' codes and NIKs."""

    def __init__(self) -> None:
        self.facilities: dict[str, Row] = {}  # Organization id -> its fasilitas row
        self.patients: dict[str, Row] = {}  # Patient id -> its sasaran row
        self.nakes: dict[str, Row] = {}  # Practitioner id -> NIK and name
        self.skipped: Counter[str] = Counter()

    def organization(self, resource: dict[str, Any]) -> None:
        kode = _identifier(resource, codes.KODE_FASILITAS)
        kinds = {c["system"]: c["code"] for t in resource["type"] for c in t["coding"]}
        jenis = kinds.get(codes.PUSTU_ORIGIN) or kinds.get(codes.FACILITY_TYPE)
        if kode is None or jenis not in ("puskesmas", "pustu", "posyandu", *_ORIGINS):
            return  # the Dinas Kesehatan is no facility of the register
        address = resource["address"][0]
        row: Row = {"kode": kode, "nama": resource["name"], "jenis": jenis}
        parent = resource.get("partOf")
        if parent and _id(parent) in self.facilities:  # not the Dinas Kesehatan: no facility
            row["kode_induk"] = self.facilities[_id(parent)]["kode"]
        row["kode_desa"] = _village(address)
        if address.get("line"):
            row["alamat"] = address["line"][0]
        row["aktif"] = resource.get("active", True)
        self.facilities[resource["id"]] = row
        # The row is written when its Location (which follows) gives the coordinates.

    def location(self, resource: dict[str, Any]) -> None:
        row = self.facilities.get(resource["id"])
        if row is not None and "position" in resource:
            row["lintang"] = resource["position"]["latitude"]
            row["bujur"] = resource["position"]["longitude"]

    def patient(self, resource: dict[str, Any]) -> Iterator[tuple[str, Row]]:
        yield from self._facility_rows()
        address = resource["address"][0]
        parts = _administrative(address)
        row: Row = {}
        if nik := _identifier(resource, codes.NIK):
            row["nik"] = nik
        if kk := _identifier(resource, codes.KK):
            row["no_kk"] = kk
        row |= {
            "nama": resource["name"][0]["text"],
            "jenis_kelamin": "L" if resource["gender"] == "male" else "P",
            "tanggal_lahir": resource["birthDate"],
        }
        if nik is None:
            row["nik_ibu"] = _identifier(resource, codes.NIK_IBU)
        row["kode_desa"] = parts["village"]
        if address.get("line"):
            row["alamat"] = address["line"][0]
        if "rt" in parts:
            row["rt"], row["rw"] = parts["rt"].zfill(3), parts["rw"].zfill(3)
        phones = [t["value"] for t in resource.get("telecom", []) if t["system"] == "phone"]
        if phones:
            row["telepon"] = phones[0]
        self.patients[resource["id"]] = row
        yield "sasaran", row

    def practitioner(self, resource: dict[str, Any]) -> None:
        self.nakes[resource["id"]] = {
            "nik": _identifier(resource, codes.NIK),
            "nama": resource["name"][0]["text"],
        }

    def visit(self, resources: list[dict[str, Any]]) -> Iterator[tuple[str, Row]]:
        """The sheet row of one demo visit: where it happened and the stage say which sheet."""
        encounter, observations = resources[0], resources[1:]
        stage = encounter["type"][0]["coding"][0]["code"]
        place = encounter["type"][1]["text"].removeprefix("Kunjungan ").lower()
        person = self.patients[_id(encounter["subject"])]
        values = _values(observations)
        visit = _Visit(
            encounter, person, values, self.nakes[_id(encounter["participant"][0]["individual"])]
        )
        if place == "posyandu" and stage == "balita":
            yield "posyandu-balita", self._balita(visit)
        elif place == "posyandu" and stage in _ADULT_SHEETS:
            yield _ADULT_SHEETS[stage], self._posyandu_adult(visit)
        elif stage == "ibu":
            yield "posyandu-ibu-hamil", self._ibu_hamil(visit, place)
        elif place == "pustu":
            yield "kunjungan", self._kunjungan(visit, stage)
        elif place == "rumah":
            yield "kunjungan-rumah", self._home(visit, stage)
        else:
            self.skipped[f"{place} ({stage})"] += 1

    def _facility_rows(self) -> Iterator[tuple[str, Row]]:
        for key in [k for k, row in self.facilities.items() if not row.get("_written")]:
            row = self.facilities[key]
            row["_written"] = True
            yield "fasilitas", {k: v for k, v in row.items() if k != "_written"}

    def _balita(self, visit: _Visit) -> Row:
        posyandu, child = visit.facility, visit.person
        row: Row = {
            "tanggal": visit.when,
            "kode_posyandu": posyandu,
            "nama_kader": _kader(posyandu),
        }
        if "nik" in child:
            row["nik_anak"] = child["nik"]
        else:
            row["nik_ibu"], row["jenis_kelamin"] = child["nik_ibu"], child["jenis_kelamin"]
        row["nama_anak"], row["tanggal_lahir"] = child["nama"], child["tanggal_lahir"]
        age = months(date.fromisoformat(child["tanggal_lahir"]), visit.day)
        if age >= 6 and visit.day.month in _VITAMIN_A_MONTHS:
            row["vitamin_a"] = True
        if age in _SCHEDULE:
            row["imunisasi"] = _SCHEDULE[age]
        return row | visit.columns(_BALITA_COLUMNS)

    def _posyandu_adult(self, visit: _Visit) -> Row:
        row: Row = {"tanggal": visit.when, "kode_posyandu": visit.facility}
        row["nama_kader"] = _kader(visit.facility)
        row |= {"nik": visit.person["nik"], "nama": visit.person["nama"]}
        row["tanggal_lahir"] = visit.person["tanggal_lahir"]
        return row | visit.columns(_ADULT_COLUMNS)

    def _ibu_hamil(self, visit: _Visit, place: str) -> Row:
        row: Row = {"tanggal": visit.when, "kode_fasilitas": visit.facility, "tempat": place}
        if place == "posyandu":
            row["nama_kader"] = _kader(visit.facility)
        else:
            row["nik_bidan"], row["nama_bidan"] = visit.nakes["nik"], visit.nakes["nama"]
        row |= {"nik_ibu": visit.person["nik"], "nama_ibu": visit.person["nama"]}
        return row | visit.columns(_ADULT_COLUMNS)

    def _kunjungan(self, visit: _Visit, stage: str) -> Row:
        """A blood-pressure follow-up at the Pustu: the demo's reason for such a visit."""
        row: Row = {"no_kunjungan": visit.encounter["id"].removeprefix("enc-")}
        row |= {"tanggal": visit.when, "kode_fasilitas": visit.facility}
        row |= {"nik_pasien": visit.person["nik"], "nama_pasien": visit.person["nama"]}
        row |= {"klaster": codes.SIKLUS[stage][1], "siklus_hidup": stage}
        row["jenis_kunjungan"] = "lama"
        row |= visit.columns(_ADULT_COLUMNS)
        row["diagnosa_1"] = "I10 - Hipertensi esensial"
        row |= {"nik_nakes": visit.nakes["nik"], "nama_nakes": visit.nakes["nama"]}
        row["profesi"] = "bidan"
        return row

    def _home(self, visit: _Visit, stage: str) -> Row:
        """A stunted child measured at home by the bidan desa: the demo's home visits."""
        row: Row = {"tanggal": visit.when, "kode_fasilitas": visit.facility}
        if "nik" in visit.person:
            row["nik"] = visit.person["nik"]
        else:
            row["nik_ibu"] = visit.person["nik_ibu"]
            row["jenis_kelamin"] = visit.person["jenis_kelamin"]
        row |= {"tanggal_lahir": visit.person["tanggal_lahir"], "nama": visit.person["nama"]}
        row |= {"nik_petugas": visit.nakes["nik"], "nama_petugas": visit.nakes["nama"]}
        row |= {"peran": "bidan", "tujuan": "balita"}
        return row | visit.columns(_HOME_COLUMNS)


class _Visit:
    """One demo visit, read as a sheet reads it."""

    def __init__(
        self, encounter: dict[str, Any], person: Row, values: dict[str, Any], nakes: Row
    ) -> None:
        self.encounter, self.person, self.values, self.nakes = encounter, person, values, nakes
        self.when: str = encounter["period"]["start"]
        self.day = date.fromisoformat(self.when[:10])
        self.facility = _id(encounter["serviceProvider"])

    def columns(self, names: dict[str, str]) -> Row:
        """The visit's values under the sheet's column names (code -> column)."""
        return {column: self.values[code] for code, column in names.items() if code in self.values}


def _values(observations: list[dict[str, Any]]) -> dict[str, Any]:
    """LOINC code -> value of a visit's Observations (the panel's components included), and
    ``cara_ukur`` from how a length or height was measured."""
    values: dict[str, Any] = {}
    for observation in observations:
        coding = observation["code"]["coding"]
        for part in [observation, *observation.get("component", [])]:
            if "valueQuantity" in part:
                values[part["code"]["coding"][0]["code"]] = part["valueQuantity"]["value"]
        if len(coding) > 1 and coding[1]["code"] in ("8306-3", "8308-9"):
            values["position"] = "telentang" if coding[1]["code"] == "8306-3" else "berdiri"
    return values


def _kader(posyandu: str) -> str:
    return random.Random(posyandu).choice(_KADER_NAMES)


def _id(reference: dict[str, str]) -> str:
    return reference["reference"].split("/", 1)[1]


_BALITA_COLUMNS = {
    "29463-7": "berat",
    "8302-2": "panjang_tinggi",
    "position": "cara_ukur",
    "9843-4": "lingkar_kepala",
    "56072-2": "lila",
}
_ADULT_COLUMNS = {"29463-7": "berat", "8480-6": "sistolik", "8462-4": "diastolik", "718-7": "hb"}
_HOME_COLUMNS = {"29463-7": "berat", "8302-2": "tinggi", "position": "cara_ukur"}
_ADULT_SHEETS = {
    "usia-sekolah-remaja": "posyandu-remaja",
    "dewasa": "posyandu-produktif",
    "lansia": "posyandu-lansia",
}


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    return next((i["value"] for i in resource["identifier"] if i["system"] == system), None)


def _administrative(address: dict[str, Any]) -> dict[str, str]:
    (extension,) = [e for e in address["extension"] if e["url"] == ADMINISTRATIVE_CODE]
    return {part["url"]: part["valueCode"] for part in extension["extension"]}


def _village(address: dict[str, Any]) -> str:
    return _administrative(address)["village"]
