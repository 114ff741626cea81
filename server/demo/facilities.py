"""The health network of the demo district as FHIR resources.

Dinas Kesehatan (the district health office) -> one Puskesmas per kecamatan -> per desa one
Pustu (some of them an upgraded Polindes, Puskesdes or Poskeskel) -> one to three Posyandu,
each an Organization (``partOf`` its parent) with a Location of the same id, claiming the ILP
profiles (docs/profiles.md).  Kabupaten, kecamatan and desa are jurisdiction Locations
(``partOf`` chained, profile ilp-wilayah) carrying the administrativeCode extension.  Each
Puskesmas has a dokter and a perawat, and each desa a bidan desa working from its Pustu.
SATUSEHAT Organization IDs, used in the ``sys-ids.kemkes.go.id`` identifier systems, are
synthetic: "10" + the Kemendagri code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from server.demo import codes
from server.demo.codes import META, concept, profiled, reference, sys_ids
from server.demo.people import NikRegistry
from server.demo.wilayah import Desa, Kabupaten, Kecamatan, address

_POSYANDU_NAMES = ("Melati", "Mawar", "Anggrek", "Kenanga", "Dahlia", "Cempaka", "Flamboyan")
_WOMEN = ("Siti", "Nur", "Dewi", "Sri", "Rina", "Wulan", "Fitri", "Lestari", "Ratna", "Indah")
_MEN = ("Ahmad", "Budi", "Hendra", "Rudi", "Eko", "Andi", "Wahyu", "Yusuf", "Hidayat", "Fajar")


@dataclass(frozen=True)
class _Kind:
    """An organization kind: its ILP profile and facility type, and its organization-type."""

    profile: str
    ilp_code: str
    ilp_display: str
    org_type: tuple[str, str]

    def types(self) -> list[dict[str, Any]]:
        return [
            concept(codes.FACILITY_TYPE, self.ilp_code, self.ilp_display),
            concept(codes.ORGANIZATION_TYPE, *self.org_type),
        ]


_DINKES = _Kind("ilp-organization", "dinkes", "Dinas Kesehatan", ("govt", "Government"))
_PUSKESMAS = _Kind("ilp-puskesmas", "puskesmas", "Puskesmas", ("prov", "Healthcare Provider"))
_PUSTU = _Kind("ilp-pustu", "pustu", "Puskesmas Pembantu (Pustu)", ("prov", "Healthcare Provider"))
_POSYANDU = _Kind("ilp-posyandu", "posyandu", "Posyandu", ("cg", "Community Group"))
# What a Pustu was established as (ILP upgrades village facilities where there is no Pustu).
_ORIGINS = {
    "pustu": ("Pustu", "Pustu"),
    "polindes": ("Polindes (Pondok Bersalin Desa)", "Polindes"),
    "puskesdes": ("Puskesdes (Pusat Kesehatan Desa)", "Puskesdes"),
    "poskeskel": ("Poskeskel (Pos Kesehatan Kelurahan)", "Poskeskel"),
}
_BUILDING = concept(codes.LOCATION_PHYSICAL_TYPE, "bu", "Building")
_SITE = concept(codes.LOCATION_PHYSICAL_TYPE, "si", "Site")
_JURISDICTION = concept(codes.LOCATION_PHYSICAL_TYPE, "jdn", "Jurisdiction")


@dataclass(frozen=True)
class Facility:
    """An Organization and its Location (same id) and the SATUSEHAT ID its systems use."""

    id: str
    name: str
    satusehat_id: str


@dataclass(frozen=True)
class DesaSite:
    """What visits in one desa refer to: its facilities, Posyandu days and bidan desa."""

    desa: Desa
    puskesmas: Facility
    pustu: Facility
    posyandu: tuple[Facility, ...]
    posyandu_days: tuple[int, ...]
    bidan: str
    pustu_origin: str  # what the Pustu was established as: a code of _ORIGINS


def dinkes_id(kabupaten: Kabupaten) -> str:
    return f"dinkes-{kabupaten.code}"


def kabupaten_resources(kabupaten: Kabupaten) -> list[dict[str, Any]]:
    """The Dinas Kesehatan Organization and the kabupaten jurisdiction Location."""
    org, satusehat_id = dinkes_id(kabupaten), f"10{kabupaten.code}00"
    where = address(kabupaten)
    return [
        _organization(
            org, f"Dinas Kesehatan {kabupaten.name}", _DINKES, satusehat_id, where, part_of=None
        ),
        _location(
            f"kab-{kabupaten.code}", kabupaten.name, _JURISDICTION, satusehat_id, where,
            position=(kabupaten.latitude, kabupaten.longitude), managed_by=org, part_of=None,
        ),
    ]  # fmt: skip


def kecamatan_resources(
    kecamatan: Kecamatan, villages: list[Desa], seed: int, niks: NikRegistry, end: date
) -> tuple[list[dict[str, Any]], list[DesaSite]]:
    """The Puskesmas of a kecamatan with its Pustu, Posyandu and nakes, in dependency order."""
    rng = random.Random(f"{seed}:kecamatan:{kecamatan.code}")
    kabupaten = kecamatan.kabupaten
    pkm = Facility(f"pkm-{kecamatan.code}", f"Puskesmas {kecamatan.name}", f"10{kecamatan.code}")
    here = address(kabupaten, kecamatan, villages[0], line=f"Jalan Raya {kecamatan.name}")
    position = (kecamatan.latitude, kecamatan.longitude)
    area = f"kec-{kecamatan.code}"
    resources = [
        _organization(
            pkm.id, pkm.name, _PUSKESMAS, pkm.satusehat_id, here, part_of=dinkes_id(kabupaten)
        ),
        _location(
            area, f"Kecamatan {kecamatan.name}", _JURISDICTION, pkm.satusehat_id,
            address(kabupaten, kecamatan), position=position, managed_by=pkm.id,
            part_of=f"kab-{kabupaten.code}",
        ),
        _location(
            pkm.id, pkm.name, _BUILDING, pkm.satusehat_id, here,
            position=position, managed_by=pkm.id, part_of=area,
        ),
    ]  # fmt: skip
    staff = [(codes.DOKTER, pkm), (codes.PERAWAT, pkm)]
    sites = []
    for number, desa in enumerate(villages, start=len(staff) + 1):
        bidan, origin = f"nakes-{kecamatan.code}-{number}", _pustu_origin(seed, desa)
        site = _desa_site(rng, desa, pkm, bidan, origin)
        resources += _desa_resources(site)
        staff.append((codes.BIDAN, site.pustu))
        sites.append(site)
    for number, (occupation, workplace) in enumerate(staff, start=1):
        practitioner = f"nakes-{kecamatan.code}-{number}"
        resources += _nakes(rng, practitioner, occupation, workplace, kecamatan, niks, end)
    return resources, sites


def _pustu_origin(seed: int, desa: Desa) -> str:
    """About half the Pustu are purpose-built; the others upgraded a village facility."""
    # A generator of its own, so that the kecamatan's draws (names, days) stay as they were.
    draw = random.Random(f"{seed}:pustu:{desa.code}").random()
    if desa.kelurahan:
        return "poskeskel" if draw < 0.5 else "pustu"
    return "pustu" if draw < 0.4 else "polindes" if draw < 0.75 else "puskesdes"


def _desa_site(rng: random.Random, desa: Desa, pkm: Facility, bidan: str, origin: str) -> DesaSite:
    names = rng.sample(_POSYANDU_NAMES, rng.choice((1, 1, 2, 2, 3)))
    return DesaSite(
        desa,
        pkm,
        Facility(f"pustu-{desa.code}", f"Pustu {desa.kind} {desa.name}", pkm.satusehat_id),
        tuple(
            Facility(f"posyandu-{desa.code}-{i}", f"Posyandu {name} {desa.name}", pkm.satusehat_id)
            for i, name in enumerate(names, start=1)
        ),
        tuple(rng.randint(5, 25) for _ in names),
        bidan,
        origin,
    )


def _desa_resources(site: DesaSite) -> list[dict[str, Any]]:
    desa, pkm = site.desa, site.puskesmas
    kecamatan = desa.kecamatan
    where = address(kecamatan.kabupaten, kecamatan, desa, line=f"{desa.kind} {desa.name}")
    position, area = (desa.latitude, desa.longitude), f"desa-{desa.code}"
    resources = [
        _location(
            area, f"{desa.kind} {desa.name}", _JURISDICTION, pkm.satusehat_id, where,
            position=position, managed_by=pkm.id, part_of=f"kec-{kecamatan.code}",
        )
    ]  # fmt: skip
    origin_display, origin_name = _ORIGINS[site.pustu_origin]
    pustu = _organization(
        site.pustu.id, site.pustu.name, _PUSTU, pkm.satusehat_id, where, part_of=pkm.id,
        extra_type=concept(codes.PUSTU_ORIGIN, site.pustu_origin, origin_display),
    )  # fmt: skip
    if site.pustu_origin != "pustu":
        pustu["alias"] = [f"{origin_name} {desa.kind} {desa.name}"]
    resources += [
        pustu,
        _location(
            site.pustu.id, site.pustu.name, _BUILDING, pkm.satusehat_id, where,
            position=position, managed_by=site.pustu.id, part_of=area,
        ),
    ]  # fmt: skip
    # Under ILP a Posyandu belongs to the Pustu of its desa; it meets at a site (a balai desa).
    for posyandu in site.posyandu:
        resources += [
            _organization(
                posyandu.id, posyandu.name, _POSYANDU, pkm.satusehat_id, where,
                part_of=site.pustu.id,
            ),
            _location(
                posyandu.id, posyandu.name, _SITE, pkm.satusehat_id, where,
                position=position, managed_by=posyandu.id, part_of=area,
            ),
        ]  # fmt: skip
    return resources


def _organization(
    res_id: str,
    name: str,
    kind: _Kind,
    satusehat_id: str,
    where: dict[str, Any],
    *,
    part_of: str | None,
    extra_type: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An Organization with its ILP facility code (the id) and the SATUSEHAT identifier."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": res_id,
        "meta": profiled(kind.profile),
        "identifier": [
            {"use": "official", "system": codes.KODE_FASILITAS, "value": res_id},
            {"system": sys_ids("organization", satusehat_id), "value": res_id},
        ],
        "active": True,
        "type": kind.types() + ([extra_type] if extra_type else []),
        "name": name,
        "address": [where],
    }
    if part_of is not None:
        resource["partOf"] = reference("Organization", part_of)
    return resource


def _location(
    res_id: str,
    name: str,
    physical_type: dict[str, Any],
    satusehat_id: str,
    where: dict[str, Any],
    *,
    position: tuple[float, float],
    managed_by: str,
    part_of: str | None,
) -> dict[str, Any]:
    latitude, longitude = position
    profile = "ilp-wilayah" if physical_type is _JURISDICTION else "ilp-location"
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": res_id,
        "meta": profiled(profile),
        "identifier": [{"system": sys_ids("location", satusehat_id), "value": res_id}],
        "status": "active",
        "name": name,
        "mode": "instance",
        "address": where,
        "physicalType": physical_type,
        "position": {"longitude": longitude, "latitude": latitude},
        "managingOrganization": reference("Organization", managed_by),
    }
    if part_of is not None:
        resource["partOf"] = reference("Location", part_of)
    return resource


def _nakes(
    rng: random.Random,
    res_id: str,
    occupation: tuple[str, str, str, str, str],
    workplace: Facility,
    kecamatan: Kecamatan,
    niks: NikRegistry,
    end: date,
) -> list[dict[str, Any]]:
    """A Practitioner (NIK, titled name) and the PractitionerRole at their facility."""
    code, display, text, prefix, degree = occupation
    female = occupation == codes.BIDAN or rng.random() < 0.5
    given = rng.sample(_WOMEN if female else _MEN, 2)
    born = end - timedelta(days=rng.randint(25 * 365, 55 * 365))
    nik = niks.issue(kecamatan.code, born, female)
    name: dict[str, Any] = {
        "use": "official",
        "text": " ".join([prefix, *given]) + (f", {degree}" if degree else ""),
        "given": given,
        "prefix": [prefix],
    }
    if degree:
        name["suffix"] = [degree]
    practitioner = {
        "resourceType": "Practitioner",
        "id": res_id,
        "meta": META,
        "identifier": [{"use": "official", "system": codes.NIK, "value": nik}],
        "active": True,
        "name": [name],
        "gender": "female" if female else "male",
        "birthDate": born.isoformat(),
    }
    role = {
        "resourceType": "PractitionerRole",
        "id": res_id,
        "meta": META,
        "active": True,
        "practitioner": reference("Practitioner", res_id),
        "organization": reference("Organization", workplace.id),
        "code": [concept(codes.SNOMED, code, display, text=text)],
        "location": [reference("Location", workplace.id)],
    }
    return [practitioner, role]
