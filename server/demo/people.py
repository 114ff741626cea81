"""Households of the demo district: mothers, under-five children, fathers, lansia; NIK and KK.

A NIK (Nomor Induk Kependudukan) is 16 digits: the 6-digit kecamatan code where it was issued,
the birth date as DDMMYY with 40 added to the day for women, and a 4-digit sequence that keeps
people born on the same day in the same kecamatan apart.  A KK (Kartu Keluarga) number has the
same shape with the card's issue date.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from server.demo.wilayah import Desa

_WOMEN = (
    "Siti", "Nur", "Dewi", "Sri", "Rina", "Wulan", "Ani", "Fitri", "Lestari", "Aminah", "Ratna",
    "Indah", "Putri", "Ayu", "Nurul", "Maya", "Kartini", "Sumiati", "Yuliana", "Rahmawati",
    "Hartini", "Baiq", "Halimah", "Zulaikha", "Suryani", "Mariani",
)  # fmt: skip
_MEN = (
    "Ahmad", "Muhammad", "Budi", "Agus", "Joko", "Hendra", "Rudi", "Eko", "Andi", "Lalu",
    "Slamet", "Bambang", "Wahyu", "Rizki", "Dedi", "Iwan", "Hasan", "Yusuf", "Hamdan",
    "Saputra", "Hidayat", "Kurniawan", "Santoso", "Firmansyah",
)  # fmt: skip
_GIRLS = (
    "Aisyah", "Zahra", "Nabila", "Keisha", "Alya", "Naura", "Salsabila", "Khansa", "Azzahra",
    "Anindya", "Kirana", "Syifa", "Humaira", "Adiba",
)  # fmt: skip
_BOYS = (
    "Rafa", "Fathir", "Arkan", "Dimas", "Bima", "Raka", "Alif", "Zidan", "Fadil", "Rizky",
    "Daffa", "Azka", "Farel", "Gibran",
)  # fmt: skip
_MOBILE_PREFIXES = ("811", "812", "813", "821", "822", "852", "853", "857", "877", "878", "896")

UNDER_FIVE_DAYS = 5 * 365
PREGNANCY_DAYS = 280


@dataclass(frozen=True)
class Person:
    key: str  # unique and stable: desa code, household number, role
    role: str  # ibu, ayah, lansia, anak1, anak2
    name: str
    gender: str
    birth_date: date
    nik: str | None  # None for infants not yet registered
    phone: str | None = None

    @property
    def is_child(self) -> bool:
        return self.role.startswith("anak")

    def life_stage(self, day: date, pregnant: bool = False) -> str:
        """The ILP life-cycle stage (siklus hidup) of a visit on ``day``."""
        if pregnant:
            return "ibu"
        years = (day - self.birth_date).days / 365.25
        if years < 7:
            return "balita"
        if years < 18:
            return "usia-sekolah-remaja"
        return "dewasa" if years < 60 else "lansia"


@dataclass(frozen=True)
class Household:
    desa: Desa
    number: int
    kk: str
    dusun: str
    rt: int
    rw: int
    posyandu: int  # which Posyandu of the desa the family attends
    members: tuple[Person, ...]
    due_date: date | None  # the mother's expected delivery, when she is pregnant

    @property
    def mother(self) -> Person:
        return self.members[0]


class NikRegistry:
    """Issues 16-digit numbers, counting the sequence per region and date."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def issue(self, region: str, day: date, female: bool = False) -> str:
        head = f"{region}{day.day + (40 if female else 0):02d}{day:%m%y}"
        sequence = self._last.get(head, 0) + 1
        self._last[head] = sequence
        return f"{head}{sequence:04d}"


def build_household(
    desa: Desa,
    number: int,
    posyandu_count: int,
    end: date,
    seed: int,
    niks: NikRegistry,
    kks: NikRegistry,
) -> Household:
    """One family as of ``end``: a mother, one or two under-fives, often a father and a lansia."""
    rng = random.Random(f"{seed}:household:{desa.code}:{number}")
    region = desa.kecamatan.code
    key = f"{desa.code}-{number:04d}"

    def person(role: str, gender: str, born: date, name: str, phone: bool = False) -> Person:
        # Infants are registered (and get a NIK) some weeks after birth.
        registered = (end - born).days >= 90
        nik = niks.issue(region, born, gender == "female") if registered else None
        mobile = f"+62{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**7, 10**8)}"
        return Person(f"{key}-{role}", role, name, gender, born, nik, mobile if phone else None)

    mother_born = end - timedelta(days=rng.randint(22 * 365, 42 * 365))
    members = [person("ibu", "female", mother_born, _name(rng, _WOMEN), phone=True)]
    ages = [rng.randrange(UNDER_FIVE_DAYS)]
    if rng.random() < 0.3 and ages[0] >= 450:
        ages.append(rng.randrange(ages[0] - 450 + 1))  # siblings at least 15 months apart
    if rng.random() < 0.6:
        father_born = mother_born - timedelta(days=round(rng.gauss(4, 3) * 365))
        members.append(person("ayah", "male", father_born, _name(rng, _MEN), phone=True))
    if rng.random() < 0.25:
        gender = rng.choice(("female", "male"))
        born = end - timedelta(days=rng.randint(60 * 365, 80 * 365))
        members.append(
            person("lansia", gender, born, _name(rng, _WOMEN if gender == "female" else _MEN))
        )
    for index, age in enumerate(sorted(ages, reverse=True), start=1):
        gender = rng.choice(("female", "male"))
        given = rng.choice(_GIRLS if gender == "female" else _BOYS)
        family = rng.choice(_MEN)  # a child commonly carries the father's name
        members.append(
            person(f"anak{index}", gender, end - timedelta(days=age), f"{given} {family}")
        )
    youngest = min(ages)
    pregnant = youngest >= 365 and rng.random() < 0.12
    due_date = end + timedelta(days=rng.randint(7, 240)) if pregnant else None
    issued = end - timedelta(days=rng.randint(0, youngest))  # re-issued for the newest child
    return Household(
        desa,
        number,
        kks.issue(region, issued),
        rng.choice(desa.dusun),
        rng.randint(1, 8),
        rng.randint(1, 4),
        rng.randrange(posyandu_count),
        tuple(members),
        due_date,
    )


def _name(rng: random.Random, names: tuple[str, ...]) -> str:
    first, second = rng.sample(names, 2)
    return f"{first} {second}"
