"""The PWS indicators: what each counts, in Bahasa Indonesia and English (docs/indicators.md).

Pure data.  ``compute.py`` counts them; the dashboard, the CSV export and the FHIR Measures
(``measures.py``) all read their names and rules from here, so a definition lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

# Thresholds (docs/indicators.md gives the source of each).
STUNTED, SEVERELY_STUNTED = -2.0, -3.0  # length/height-for-age z-score
WASTED, UNDERWEIGHT, OVERWEIGHT = -2.0, -2.0, 2.0  # weight-for-length/height, weight-for-age
LILA_KEK_CM = 23.5  # mid-upper-arm circumference of a pregnant woman: chronic energy deficiency
HB_ANAEMIA_G_DL = 11.0  # haemoglobin of a pregnant woman
SYSTOLIC_HIGH, DIASTOLIC_HIGH = 140.0, 90.0  # mm[Hg]
GLUCOSE_HIGH_MG_DL = 200.0  # random blood glucose
UNDER_FIVE_MONTHS = 60
ADULT_YEARS = 15
ANC_WINDOW_DAYS = 280  # the ANC visits of one pregnancy: those of the last 280 days


@dataclass(frozen=True)
class Indicator:
    """One indicator: a share (numerator of denominator) or a plain count per area and month."""

    code: str
    group: str  # balita, ibu, dewasa, kunjungan (GROUPS)
    name_id: str
    name_en: str
    numerator_id: str
    numerator_en: str
    denominator_id: str | None  # None: a count, no denominator
    denominator_en: str | None
    lower_is_better: bool = False
    target: float | None = None  # percent; ILP_TARGETS overrides (Settings.indicator_targets)

    @property
    def is_count(self) -> bool:
        return self.denominator_id is None

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_id


GROUPS = {
    "balita": ("Balita", "Children under five"),
    "ibu": ("Ibu hamil", "Pregnant women"),
    "dewasa": ("Usia dewasa dan lansia", "Adults and the elderly"),
    "kunjungan": ("Kunjungan rumah", "Home visits"),
}

_CHILDREN_MEASURED_ID = "balita yang diukur tinggi/panjang badannya bulan ini"
_CHILDREN_MEASURED_EN = "children under five whose length/height was measured this month"
_CHILDREN_WFH_ID = "balita yang diukur berat dan tinggi/panjang badannya bulan ini"
_CHILDREN_WFH_EN = "children under five with weight and length/height measured this month"
_CHILDREN_WEIGHED_ID = "balita yang ditimbang bulan ini"
_CHILDREN_WEIGHED_EN = "children under five weighed this month"
_SCREEN_BASE_ID = "penduduk usia 15 tahun ke atas yang terdaftar"
_SCREEN_BASE_EN = "registered residents aged 15 and over"

INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "balita-ditimbang",
        "balita",
        "Balita ditimbang (D/S)",
        "Children under five weighed (D/S)",
        _CHILDREN_WEIGHED_ID,
        _CHILDREN_WEIGHED_EN,
        "balita terdaftar (berumur di bawah 60 bulan pada akhir bulan)",
        "registered children under five (under 60 months at the end of the month)",
        target=80.0,
    ),
    Indicator(
        "stunting",
        "balita",
        "Stunting (TB/U < -2 SD)",
        "Stunting (HAZ < -2)",
        "balita dengan z-score TB/U di bawah -2",
        "children with a length/height-for-age z < -2",
        _CHILDREN_MEASURED_ID,
        _CHILDREN_MEASURED_EN,
        lower_is_better=True,
        target=14.0,
    ),
    Indicator(
        "stunting-berat",
        "balita",
        "Sangat pendek (TB/U < -3 SD)",
        "Severe stunting (HAZ < -3)",
        "balita dengan z-score TB/U di bawah -3",
        "children with a length/height-for-age z < -3",
        _CHILDREN_MEASURED_ID,
        _CHILDREN_MEASURED_EN,
        lower_is_better=True,
    ),
    Indicator(
        "wasting",
        "balita",
        "Gizi kurang/buruk (BB/TB < -2 SD)",
        "Wasting (WHZ < -2)",
        "balita dengan z-score BB/TB di bawah -2",
        "children with a weight-for-length/height z < -2",
        _CHILDREN_WFH_ID,
        _CHILDREN_WFH_EN,
        lower_is_better=True,
        target=7.0,
    ),
    Indicator(
        "underweight",
        "balita",
        "Berat badan kurang (BB/U < -2 SD)",
        "Underweight (WAZ < -2)",
        "balita dengan z-score BB/U di bawah -2",
        "children with a weight-for-age z < -2",
        _CHILDREN_WEIGHED_ID,
        _CHILDREN_WEIGHED_EN,
        lower_is_better=True,
    ),
    Indicator(
        "overweight",
        "balita",
        "Gizi lebih (BB/TB > +2 SD)",
        "Overweight (WHZ > +2)",
        "balita dengan z-score BB/TB di atas +2",
        "children with a weight-for-length/height z > +2",
        _CHILDREN_WFH_ID,
        _CHILDREN_WFH_EN,
        lower_is_better=True,
        target=3.0,
    ),
    Indicator(
        "k1",
        "ibu",
        "K1: kunjungan ANC pertama",
        "K1: first antenatal visit",
        "ibu hamil yang kunjungan ANC pertamanya bulan ini",
        "pregnant women whose first antenatal visit of the pregnancy was this month",
        "ibu hamil yang berkunjung ANC bulan ini",
        "pregnant women with an antenatal visit this month",
    ),
    Indicator(
        "k4",
        "ibu",
        "K4: 4 kunjungan ANC atau lebih",
        "K4: four or more antenatal visits",
        "ibu hamil dengan 4 kunjungan ANC atau lebih dalam kehamilan ini",
        "pregnant women with four or more antenatal visits in this pregnancy",
        "ibu hamil yang berkunjung ANC bulan ini",
        "pregnant women with an antenatal visit this month",
    ),
    Indicator(
        "k6",
        "ibu",
        "K6: 6 kunjungan ANC atau lebih",
        "K6: six or more antenatal visits",
        "ibu hamil dengan 6 kunjungan ANC atau lebih dalam kehamilan ini",
        "pregnant women with six or more antenatal visits in this pregnancy",
        "ibu hamil yang berkunjung ANC bulan ini",
        "pregnant women with an antenatal visit this month",
    ),
    Indicator(
        "kek",
        "ibu",
        "Ibu hamil KEK (LILA < 23,5 cm)",
        "Chronic energy deficiency (MUAC < 23.5 cm)",
        "ibu hamil dengan LILA di bawah 23,5 cm",
        "pregnant women with a MUAC below 23.5 cm",
        "ibu hamil yang diukur LILA-nya bulan ini",
        "pregnant women whose MUAC was measured this month",
        lower_is_better=True,
    ),
    Indicator(
        "anemia-bumil",
        "ibu",
        "Ibu hamil anemia (Hb < 11 g/dL)",
        "Anaemia in pregnancy (Hb < 11 g/dL)",
        "ibu hamil dengan Hb di bawah 11 g/dL",
        "pregnant women with haemoglobin below 11 g/dL",
        "ibu hamil yang diperiksa Hb-nya bulan ini",
        "pregnant women whose haemoglobin was measured this month",
        lower_is_better=True,
    ),
    Indicator(
        "skrining-hipertensi",
        "dewasa",
        "Skrining hipertensi",
        "Screened for hypertension",
        "penduduk 15+ yang diukur tekanan darahnya bulan ini",
        "residents aged 15+ whose blood pressure was measured this month",
        _SCREEN_BASE_ID,
        _SCREEN_BASE_EN,
    ),
    Indicator(
        "hipertensi",
        "dewasa",
        "Tekanan darah tinggi (>= 140/90)",
        "High blood pressure (>= 140/90)",
        "yang diskrining dengan sistolik >= 140 atau diastolik >= 90 mmHg",
        "of those screened, systolic >= 140 or diastolic >= 90 mm Hg",
        "penduduk 15+ yang diukur tekanan darahnya bulan ini",
        "residents aged 15+ whose blood pressure was measured this month",
        lower_is_better=True,
    ),
    Indicator(
        "skrining-diabetes",
        "dewasa",
        "Skrining diabetes",
        "Screened for diabetes",
        "penduduk 15+ yang diperiksa gula darahnya bulan ini",
        "residents aged 15+ whose blood glucose was measured this month",
        _SCREEN_BASE_ID,
        _SCREEN_BASE_EN,
    ),
    Indicator(
        "diabetes",
        "dewasa",
        "Gula darah tinggi (>= 200 mg/dL)",
        "High blood glucose (>= 200 mg/dL)",
        "yang diskrining dengan gula darah >= 200 mg/dL",
        "of those screened, blood glucose >= 200 mg/dL",
        "penduduk 15+ yang diperiksa gula darahnya bulan ini",
        "residents aged 15+ whose blood glucose was measured this month",
        lower_is_better=True,
    ),
    Indicator(
        "kunjungan-rumah",
        "kunjungan",
        "Kunjungan rumah",
        "Home visits",
        "kunjungan rumah (Encounter kelas HH) bulan ini",
        "home visits (Encounters of class HH) this month",
        None,
        None,
    ),
)
BY_CODE = {indicator.code: indicator for indicator in INDICATORS}

# A traffic light: within target green; up to a quarter beyond it (a fifth short of it, for
# an indicator that should be high) amber; red beyond.  docs/indicators.md#targets.
AMBER_MARGIN = 0.25


def status(indicator: Indicator, rate: float | None, target: float | None) -> str | None:
    """ "green", "amber" or "red" for ``rate`` (percent) against ``target``; None without one."""
    if rate is None or target is None or indicator.is_count:
        return None
    if indicator.lower_is_better:
        if rate <= target:
            return "green"
        return "amber" if rate <= target * (1 + AMBER_MARGIN) else "red"
    if rate >= target:
        return "green"
    return "amber" if rate >= target * (1 - AMBER_MARGIN * 0.8) else "red"


def targets(overrides: dict[str, float]) -> dict[str, float | None]:
    """Each indicator's target: the catalogue's, replaced by ILP_INDICATOR_TARGETS entries."""
    return {i.code: overrides.get(i.code, i.target) for i in INDICATORS}
