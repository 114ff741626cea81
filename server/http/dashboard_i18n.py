"""Every word the PWS dashboard shows, in Bahasa Indonesia (the default) and English.

Indicator and group names come from ``services/indicators/catalogue.py``; this module holds the
rest of the page text and the number formats of each language (Indonesian writes 1.234 and
14,3 %, English 1,234 and 14.3%).  A missing key fails the tests, not a user's page: both
languages must hold the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"

_MONTHS = {
    "id": ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}

TEXT: dict[str, dict[str, str]] = {
    "id": {
        "title": "Dasbor PWS",
        "district": "Kabupaten",
        "desa": "Desa",
        "posyandu": "Posyandu",
        "month": "Bulan",
        "puskesmas": "Puskesmas",
        "all_puskesmas": "Semua Puskesmas",
        "show": "Tampilkan",
        "name": "Nama",
        "total": "Jumlah",
        "sort_asc": "urutkan naik",
        "sort_desc": "urutkan turun",
        "no_data": "Belum ada data untuk bulan ini.",
        "trend": "Tren 12 bulan",
        "target": "target",
        "download_csv": "Unduh CSV",
        "back": "Kembali ke",
        "switch_language": "English",
        "indicators": "Indikator per wilayah",
        "legend": "Keterangan",
        "green": "sesuai target",
        "amber": "mendekati target",
        "red": "jauh dari target",
        "no_target": "tanpa target",
        "empty": "tidak ada sasaran",
        "children_at_risk": "Balita berisiko",
        "children_intro": (
            "Balita dengan z-score terakhir di bawah -2 SD, untuk ditindaklanjuti kader."
        ),
        "no_children": "Tidak ada balita berisiko pada bulan ini.",
        "sex": "Jenis kelamin",
        "male": "Laki-laki",
        "female": "Perempuan",
        "unknown": "Tidak diketahui",
        "birth_date": "Tanggal lahir",
        "age_months": "Umur (bulan)",
        "measured": "Diukur",
        "haz": "TB/U (z)",
        "waz": "BB/U (z)",
        "whz": "BB/TB (z)",
        "reasons": "Alasan",
        "code": "Kode",
        "numerator": "pembilang",
        "denominator": "penyebut",
        "percent": "persen",
        "status": "status",
        "login": "Masuk",
        "login_intro": "Masuk dengan ID klien dan rahasia klien dari pengelola server.",
        "client_id": "ID klien",
        "client_secret": "Rahasia klien",
        "login_failed": "ID klien atau rahasia klien salah.",
        "logout": "Keluar",
        "signed_in_as": "Masuk sebagai",
        "error": "Terjadi kesalahan",
        "error_400": "Permintaan tidak valid.",
        "error_csrf": "Formulir kedaluwarsa atau tidak valid. Muat ulang halaman dan coba lagi.",
        "error_403": "Anda tidak berhak melihat halaman ini.",
        "error_404": "Halaman atau wilayah tidak ditemukan.",
        "error_429": "Terlalu banyak permintaan. Coba lagi sebentar lagi.",
        "error_500": "Terjadi kesalahan di server. Nomor rujukan:",
        "home": "Ke halaman utama dasbor",
    },
    "en": {
        "title": "PWS dashboard",
        "district": "District",
        "desa": "Village (desa)",
        "posyandu": "Posyandu",
        "month": "Month",
        "puskesmas": "Puskesmas",
        "all_puskesmas": "All Puskesmas",
        "show": "Show",
        "name": "Name",
        "total": "Total",
        "sort_asc": "sort ascending",
        "sort_desc": "sort descending",
        "no_data": "No data for this month yet.",
        "trend": "12-month trend",
        "target": "target",
        "download_csv": "Download CSV",
        "back": "Back to",
        "switch_language": "Bahasa Indonesia",
        "indicators": "Indicators by area",
        "legend": "Legend",
        "green": "meets the target",
        "amber": "near the target",
        "red": "far from the target",
        "no_target": "no target",
        "empty": "nobody to count",
        "children_at_risk": "Children at risk",
        "children_intro": (
            "Children under five whose latest z-score is below -2 SD, for the kader to follow up."
        ),
        "no_children": "No children at risk this month.",
        "sex": "Sex",
        "male": "Male",
        "female": "Female",
        "unknown": "Unknown",
        "birth_date": "Birth date",
        "age_months": "Age (months)",
        "measured": "Measured",
        "haz": "HAZ",
        "waz": "WAZ",
        "whz": "WHZ",
        "reasons": "Reasons",
        "code": "Code",
        "numerator": "numerator",
        "denominator": "denominator",
        "percent": "percent",
        "status": "status",
        "login": "Sign in",
        "login_intro": "Sign in with the client ID and client secret from the server's operator.",
        "client_id": "Client ID",
        "client_secret": "Client secret",
        "login_failed": "Wrong client ID or client secret.",
        "logout": "Sign out",
        "signed_in_as": "Signed in as",
        "error": "Something went wrong",
        "error_400": "The request is not valid.",
        "error_csrf": "The form has expired or is not valid. Reload the page and try again.",
        "error_403": "You may not see this page.",
        "error_404": "Page or area not found.",
        "error_429": "Too many requests. Try again in a moment.",
        "error_500": "Something went wrong on the server. Reference:",
        "home": "To the dashboard's front page",
    },
}

STATUS_SYMBOLS = {"green": "\u2713", "amber": "!", "red": "\u2717"}  # check mark, !, cross


def language(asked: str | None) -> str:
    """The language of a ``lang`` parameter: ``en`` or the default ``id``."""
    return asked if asked in LANGUAGES else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Words:
    """Text and number formats of one language, handed to the templates as ``w``."""

    lang: str

    def __call__(self, key: str) -> str:
        return TEXT[self.lang][key]

    def number(self, value: int) -> str:
        """A whole number with the language's thousands separator (1.234 or 1,234)."""
        text = f"{value:,}"
        return text.replace(",", ".") if self.lang == "id" else text

    def decimal(self, value: float, places: int = 1) -> str:
        """A number with ``places`` decimals and the language's decimal mark."""
        text = f"{value:,.{places}f}"
        if self.lang == "id":
            return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
        return text

    def percent(self, rate: float, places: int = 1) -> str:
        """14,3 % in Indonesian, 14.3% in English."""
        text = self.decimal(rate, places)
        return f"{text} %" if self.lang == "id" else f"{text}%"

    def month(self, month: str, short: bool = False) -> str:
        """The month's name and year, "Mei 2025" for "2025-05" ("Mei" when ``short``)."""
        year, number = month.split("-")
        name = _MONTHS[self.lang][int(number) - 1]
        return name if short else f"{name} {year}"

    def sex(self, code: str | None) -> str:
        return self(code) if code in ("male", "female") else self("unknown")
