"""The administrative areas of the demo district: Kemendagri codes, names, places, addresses.

Kemendagri kode wilayah (Permendagri 137/2017): province 2 digits, kabupaten 4, kecamatan 6,
desa/kelurahan 10; the last four digits of a village start with 1 for a kelurahan and 2 for a
desa.  The default kabupaten, 52.60 "Kabupaten Contoh" in Nusa Tenggara Barat, does not exist
(NTB's kabupaten end at 52.08), so no real area is confused with synthetic data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from server.demo.codes import ADMINISTRATIVE_CODE

# UTC offsets by province code: WIB +07:00, WITA +08:00, WIT +09:00.
_WITA = {"51", "52", "53", "63", "64", "65", "71", "72", "73", "74", "75", "76"}
_WIT = {"81", "82", "91", "92", "93", "94", "95", "96"}

_PREFIXES = (
    "Suka", "Karang", "Mekar", "Sumber", "Tanjung", "Batu", "Sido", "Pringga", "Sela", "Tegal",
    "Kembang", "Rensing", "Labuhan", "Bagik", "Lenek",
)  # fmt: skip
_SUFFIXES = (
    "maju", "makmur", "jaya", "sari", "rejo", "mulya", "baru", "indah", "damai", "agung",
    "asri", "wangi", "lestari", "raya", "harapan",
)  # fmt: skip
_DUSUN = (
    "Krajan", "Kauman", "Lendang", "Tengah", "Timur", "Barat", "Daya", "Lauk", "Bat", "Gubuk",
    "Pancor", "Montong", "Dasan", "Peresak",
)  # fmt: skip


def utc_offset(province_code: str) -> str:
    """The local UTC offset of a province: "+07:00" (WIB), "+08:00" (WITA) or "+09:00" (WIT)."""
    if province_code in _WIT:
        return "+09:00"
    return "+08:00" if province_code in _WITA else "+07:00"


@dataclass(frozen=True)
class Kabupaten:
    province_code: str
    province_name: str
    code: str
    name: str
    latitude: float
    longitude: float
    postal_prefix: str

    @property
    def offset(self) -> str:
        return utc_offset(self.province_code)


@dataclass(frozen=True)
class Kecamatan:
    kabupaten: Kabupaten
    code: str
    name: str
    postal_code: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Desa:
    kecamatan: Kecamatan
    code: str
    name: str
    kelurahan: bool
    latitude: float
    longitude: float
    dusun: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "Kelurahan" if self.kelurahan else "Desa"


DEFAULT_KABUPATEN = Kabupaten(
    "52", "Nusa Tenggara Barat", "5260", "Kabupaten Contoh", -8.65, 116.53, "83"
)


def build_areas(
    kabupaten: Kabupaten, kecamatan_count: int, desa_per_kecamatan: int, seed: int
) -> list[list[Desa]]:
    """The desa of each kecamatan; the first village of the first kecamatan is a kelurahan."""
    rng = random.Random(f"{seed}:wilayah:{kabupaten.code}")
    names = _place_names(rng, kecamatan_count * desa_per_kecamatan)
    areas = []
    for k in range(kecamatan_count):
        latitude = kabupaten.latitude + rng.uniform(-0.25, 0.25)
        longitude = kabupaten.longitude + rng.uniform(-0.25, 0.25)
        village_names = names[k * desa_per_kecamatan : (k + 1) * desa_per_kecamatan]
        kecamatan = Kecamatan(
            kabupaten,
            f"{kabupaten.code}{k + 1:02d}",
            village_names[0],  # a kecamatan is usually named after its main village
            f"{kabupaten.postal_prefix}{(600 + 10 * k) % 1000:03d}",
            round(latitude, 6),
            round(longitude, 6),
        )
        villages = []
        for d, name in enumerate(village_names):
            kelurahan = k == 0 and d == 0
            number = 1001 + d if kelurahan else 2001 + d
            villages.append(
                Desa(
                    kecamatan,
                    f"{kecamatan.code}{number:04d}",
                    name,
                    kelurahan,
                    round(latitude + rng.uniform(-0.05, 0.05), 6),
                    round(longitude + rng.uniform(-0.05, 0.05), 6),
                    tuple(rng.sample(_DUSUN, rng.randint(3, 5))),
                )
            )
        areas.append(villages)
    return areas


def _place_names(rng: random.Random, count: int) -> list[str]:
    names = [prefix + suffix for prefix in _PREFIXES for suffix in _SUFFIXES]
    rng.shuffle(names)
    # Past the word lists, numbered names keep every village distinct.
    return [
        names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        for i in range(count)
    ]


def administrative_code(
    kabupaten: Kabupaten,
    kecamatan: Kecamatan | None = None,
    desa: Desa | None = None,
    rt: int | None = None,
    rw: int | None = None,
) -> dict[str, Any]:
    """The SATUSEHAT administrativeCode extension down to the most precise area given."""
    parts = [("province", kabupaten.province_code), ("city", kabupaten.code)]
    if kecamatan is not None:
        parts.append(("district", kecamatan.code))
    if desa is not None:
        parts.append(("village", desa.code))
    if rt is not None and rw is not None:
        parts += [("rt", str(rt)), ("rw", str(rw))]
    return {
        "url": ADMINISTRATIVE_CODE,
        "extension": [{"url": url, "valueCode": code} for url, code in parts],
    }


def address(
    kabupaten: Kabupaten,
    kecamatan: Kecamatan | None = None,
    desa: Desa | None = None,
    *,
    line: str | None = None,
    use: str = "work",
    rt: int | None = None,
    rw: int | None = None,
) -> dict[str, Any]:
    """An Address with names for people and the administrativeCode extension for machines."""
    value: dict[str, Any] = {
        "extension": [administrative_code(kabupaten, kecamatan, desa, rt, rw)],
        "use": use,
    }
    if line:
        value["line"] = [line]
    value["city"] = kabupaten.name
    if kecamatan is not None:
        value["district"] = f"Kecamatan {kecamatan.name}"
        value["postalCode"] = kecamatan.postal_code
    value["state"] = kabupaten.province_name
    value["country"] = "ID"
    return value
