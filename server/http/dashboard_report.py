"""What the dashboard's pages and CSV files are made of: sorted tables, chart layouts, rows.

Pure functions over the values of ``services/indicators`` (no request, no services call), so
that ``http/dashboard.py`` stays a set of small views.  Sorting puts areas without a value
(an empty denominator) last in both directions; charts are laid out for an SVG viewBox of
300 x 150; CSV cells are neutralised against formula injection (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from server.http.dashboard_i18n import Words
from server.services.indicators import catalogue
from server.services.indicators.catalogue import BY_CODE, GROUPS, INDICATORS, Indicator
from server.services.indicators.report import AreaRow, ChildAtRisk, Overview, Value

Targets = dict[str, float | None]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    """One indicator table: its rows in display order, the total and how they are sorted."""

    rows: list[AreaRow]
    total: AreaRow
    sort: str  # "name" or an indicator code
    descending: bool


def groups() -> list[tuple[str, list[Indicator]]]:
    """The indicators by group, in the catalogue's order."""
    return [(key, [i for i in INDICATORS if i.group == key]) for key in GROUPS]


def value_of(row: AreaRow, indicator: Indicator) -> Value:
    """``row``'s value of ``indicator`` (nothing counted when the row lacks it)."""
    found = row.values.get(indicator.code)
    return found if found is not None else Value(0, None if indicator.is_count else 0)


def _number(indicator: Indicator, value: Value) -> float | None:
    """What is shown, sorted and plotted: the count, or the percent (None when empty)."""
    return float(value.numerator) if indicator.is_count else value.rate


def sort_table(report: Overview, sort: str | None, direction: str | None) -> Table:
    """``report``'s rows by name or an indicator, ``asc`` or ``desc``; empties last in both.

    An unknown ``sort`` sorts by name; indicators sort descending unless told otherwise.
    """
    key = sort if sort in BY_CODE else "name"
    descending = (direction or ("asc" if key == "name" else "desc")) == "desc"
    if key == "name":
        rows = sorted(report.rows, key=lambda r: r.area.name.casefold(), reverse=descending)
        return Table(rows, report.total, key, descending)
    indicator = BY_CODE[key]
    keyed = [(_number(indicator, value_of(r, indicator)), r) for r in report.rows]
    full = [(n, r) for n, r in keyed if n is not None]
    full.sort(key=lambda nr: (-nr[0] if descending else nr[0], nr[1].area.name.casefold()))
    empty = sorted((r for n, r in keyed if n is None), key=lambda r: r.area.name.casefold())
    return Table([r for _, r in full] + empty, report.total, key, descending)


@dataclass(frozen=True)
class Chart:
    """An indicator's trend laid out for an SVG viewBox of 300 x 150 (plot: x 40-290, y 15-120)."""

    indicator: Indicator
    points: list[tuple[str, Value, float | None]]  # month, value, plotted number
    top: float  # the y axis runs from 0 to top
    target: float | None

    def x(self, index: int) -> float:
        return round(40 + (index + 0.5) * 250 / max(len(self.points), 1), 1)

    def y(self, number: float) -> float:
        return round(120 - 105 * min(number, self.top) / self.top, 1)

    @property
    def bar_width(self) -> float:
        return round(150 / max(len(self.points), 1), 1)

    def lines(self) -> list[str]:
        """Polyline points of each run of months with a value (an empty month breaks it)."""
        runs: list[list[str]] = [[]]
        for index, (_, _, number) in enumerate(self.points):
            if number is None:
                runs.append([])
            else:
                runs[-1].append(f"{self.x(index)},{self.y(number)}")
        return [" ".join(run) for run in runs if run]


def charts(trend: dict[str, list[tuple[str, Value]]], targets: Targets) -> list[Chart]:
    """One chart per indicator, in catalogue order, from ``trend`` (services.indicators)."""
    laid_out = []
    for indicator in INDICATORS:
        points = [(m, v, _number(indicator, v)) for m, v in trend.get(indicator.code, [])]
        target = None if indicator.is_count else targets.get(indicator.code)
        highest = max([n for _, _, n in points if n is not None] + [target or 0.0])
        laid_out.append(Chart(indicator, points, nice_top(highest, indicator.is_count), target))
    return laid_out


def nice_top(highest: float, is_count: bool) -> float:
    """The least 1, 2, 2.5 or 5 times a power of ten at least 5 % above ``highest``;
    at most 100 for a percent."""
    if highest <= 0:
        return 10.0 if is_count else 100.0
    scale = 1.0
    while is_count or scale < 100:
        for step in (1.0, 2.0, 2.5, 5.0):
            if step * scale >= highest * 1.05:
                return step * scale
        scale *= 10
    return 100.0


def table_rows(table: Table | None, words: Words, targets: Targets) -> Iterator[list[object]]:
    """The CSV of a table: a header, the areas in the page's order, the total."""
    header: list[object] = [words("code"), words("name")]
    for indicator in INDICATORS:
        name = indicator.name(words.lang)
        header += [f"{name} - {words(k)}" for k in ("numerator", "denominator", "percent")]
        header.append(f"{name} - {words('status')}")
    yield header
    if table is None:
        return
    for row in [*table.rows, table.total]:
        is_total = row is table.total
        cells: list[object] = ["" if is_total else row.area.code]
        cells.append(words("total") if is_total else row.area.name)
        for indicator in INDICATORS:
            value = value_of(row, indicator)
            light = catalogue.status(indicator, value.rate, targets.get(indicator.code))
            rate = round(value.rate, 1) if value.rate is not None else None
            cells += [value.numerator, value.denominator, rate, words(light) if light else None]
        yield cells


def children_rows(children: list[ChildAtRisk], words: Words) -> Iterator[list[object]]:
    """The CSV of a Posyandu's children at risk."""
    keys = ("name", "sex", "birth_date", "age_months", "measured", "haz", "waz", "whz", "reasons")
    yield [words(k) for k in keys]
    for child in children:
        yield [
            child.name,
            words.sex(child.sex),
            child.birth_date,
            age_in_months(child.birth_date, child.measured),
            child.measured,
            child.height_for_age,
            child.weight_for_age,
            child.weight_for_height,
            "; ".join(reason_names(child, words.lang)),
        ]


def reason_names(child: ChildAtRisk, lang: str) -> list[str]:
    return [BY_CODE[r].name(lang) if r in BY_CODE else r for r in child.reasons]


def age_in_months(birth_date: str | None, day: str) -> int | None:
    """Completed months from ``birth_date`` to ``day`` (YYYY-MM-DD), as a kader counts them."""
    if not birth_date or len(birth_date) < 10 or len(day) < 10:
        return None
    born, then = date.fromisoformat(birth_date[:10]), date.fromisoformat(day[:10])
    return (then.year - born.year) * 12 + then.month - born.month - (then.day < born.day)


def csv_body(rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 CSV with a byte order mark (so Excel reads it as UTF-8), CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def csv_cell(cell: object) -> str:
    """A cell's text: numbers with a dot; text a spreadsheet would run as a formula gets an
    apostrophe first."""
    if cell is None:
        return ""
    if isinstance(cell, str):
        return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
    if isinstance(cell, float):
        return f"{cell:.2f}".rstrip("0").rstrip(".")
    return str(cell)
