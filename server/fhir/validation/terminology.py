"""Code membership in ValueSets and CodeSystems we hold, for checking bindings on every write.

Each ValueSet is expanded once from its ``compose`` (concepts, whole systems, filters over a
held CodeSystem's hierarchy and properties, imported value sets, excludes) or, when that
cannot be enumerated, from a complete stored ``expansion``; after that a check is a dict
lookup.  Parts we cannot enumerate (LOINC, SNOMED CT, UCUM, a CodeSystem that is not held or
not ``complete``, an unsupported filter) stay "open" per system, so a code of such a system is
"unknown" while codes of the other systems still get a firm answer.  No terminology server.
See https://hl7.org/fhir/R4/valueset.html#compositions and
https://hl7.org/fhir/R4/codesystem.html.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .conformance import ConformanceSet

logger = logging.getLogger(__name__)

UCUM = "http://unitsofmeasure.org"
ANY_SYSTEM = "*"  # key of ``open`` meaning "members of any system may be missing"
_CONCEPT_PROPERTIES = frozenset({"concept", "code"})
_INACTIVE_STATUSES = frozenset({"retired", "inactive"})

Key = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class CodeCheck:
    """The answer for one code: "valid", "invalid" or "unknown" (we cannot tell)."""

    status: str
    message: str = ""
    display: str | None = None


@dataclass(frozen=True)
class _Concept:
    display: str | None
    properties: Mapping[str, tuple[str, ...]]
    active: bool
    selectable: bool


class _CodeSystemIndex:
    """The concepts of one CodeSystem with their hierarchy (nesting, parent/child properties)."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.content = str(resource.get("content", "complete"))
        # Case-sensitive unless the CodeSystem says otherwise.
        self.case_sensitive = resource.get("caseSensitive") is not False
        self.concepts: dict[str, _Concept] = {}
        self.children: dict[str, set[str]] = {}
        self.declared = {p.get("code") for p in resource.get("property", []) or []}
        self._add(resource.get("concept", []) or [], None)
        for code, concept in self.concepts.items():
            for parent in concept.properties.get("parent", ()) + concept.properties.get(
                "subsumedBy", ()
            ):
                self.children.setdefault(parent, set()).add(code)
            for child in concept.properties.get("child", ()):
                self.children.setdefault(code, set()).add(child)
        self.parents: dict[str, set[str]] = {}
        for parent, kids in self.children.items():
            for kid in kids:
                self.parents.setdefault(kid, set()).add(parent)
        self.folded = {code.casefold(): code for code in self.concepts}

    def _add(self, concepts: Iterable[dict[str, Any]], parent: str | None) -> None:
        for raw in concepts:
            code = raw.get("code")
            if not isinstance(code, str):
                continue
            props: dict[str, tuple[str, ...]] = {}
            for prop in raw.get("property", []) or []:
                props[prop["code"]] = props.get(prop["code"], ()) + (_property_value(prop),)
            self.concepts[code] = _Concept(
                display=raw.get("display"),
                properties=props,
                active=not (
                    _INACTIVE_STATUSES & set(props.get("status", ()))
                    or "true" in props.get("inactive", ())
                ),
                selectable="true" not in props.get("notSelectable", ()) + props.get("abstract", ()),
            )
            if parent is not None:
                self.children.setdefault(parent, set()).add(code)
            self._add(raw.get("concept", []) or [], code)

    @property
    def complete(self) -> bool:
        return self.content == "complete"

    def find(self, code: str) -> str | None:
        """The code as the CodeSystem spells it, honouring ``caseSensitive``."""
        if code in self.concepts:
            return code
        return None if self.case_sensitive else self.folded.get(code.casefold())

    def closure(self, code: str, links: Mapping[str, set[str]]) -> set[str]:
        """Codes reachable from ``code`` over ``links`` (children or parents), not ``code``."""
        found: set[str] = set()
        todo = list(links.get(code, ()))
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(links.get(current, ()))
        return found

    def select(self, prop: str, op: str, value: str) -> set[str] | None:
        """Codes matching one compose filter; ``None`` when the filter is not supported."""
        if prop in _CONCEPT_PROPERTIES:
            return self._select_concepts(op, value)
        if prop == "parent" and op == "=":
            return set(self.children.get(self.find(value) or value, ()))
        if prop == "child" and op == "=":
            return set(self.parents.get(self.find(value) or value, ()))
        if prop not in self.declared and not any(
            prop in c.properties for c in self.concepts.values()
        ):
            return None  # e.g. a filter the CodeSystem defines by name only ("acme-plasma")
        values = {c: concept.properties.get(prop, ()) for c, concept in self.concepts.items()}
        if op == "=":
            return {c for c, vs in values.items() if value in vs}
        if op in ("in", "not-in"):
            wanted = {v.strip() for v in value.split(",")}
            return {c for c, vs in values.items() if bool(wanted & set(vs)) == (op == "in")}
        if op == "exists":
            return {c for c, vs in values.items() if bool(vs) == (value == "true")}
        if op == "regex" and (pattern := _compile(value)) is not None:
            return {c for c, vs in values.items() if any(map(pattern.fullmatch, vs))}
        return None

    def _select_concepts(self, op: str, value: str) -> set[str] | None:
        code = self.find(value) or value
        if op == "is-a":
            return self.closure(code, self.children) | {code}
        if op == "descendent-of":
            return self.closure(code, self.children)
        if op == "is-not-a":
            return set(self.concepts) - self.closure(code, self.children) - {code}
        if op == "generalizes":
            return self.closure(code, self.parents) | {code}
        if op == "=":
            return {code}
        if op in ("in", "not-in"):
            listed = {self.find(v.strip()) or v.strip() for v in value.split(",")}
            return listed if op == "in" else set(self.concepts) - listed
        if op == "regex" and (pattern := _compile(value)) is not None:
            return {c for c in self.concepts if pattern.fullmatch(c)}
        return None


@dataclass
class _Members:
    """Known members with displays; per system (or ``*``) why more may exist; and the codes
    of such open systems that are certainly no members (excluded by name)."""

    codes: dict[Key, str | None] = field(default_factory=dict)
    open: dict[str, str] = field(default_factory=dict)
    absent: frozenset[Key] = frozenset()

    def reason(self, system: str) -> str | None:
        return self.open.get(system) or self.open.get(ANY_SYSTEM)

    def lacks(self, key: Key) -> bool:
        return key not in self.codes and (key in self.absent or self.reason(key[0]) is None)

    def union(self, other: _Members) -> _Members:
        codes = dict(other.codes)
        codes.update((k, d or codes.get(k)) for k, d in self.codes.items())
        absent = {k for k in self.absent | other.absent if self.lacks(k) and other.lacks(k)}
        return _Members(codes, {**other.open, **self.open}, frozenset(absent))

    def intersect(self, other: _Members) -> _Members:
        both = self.codes.keys() & other.codes.keys()
        result = _Members(
            {k: self.codes[k] or other.codes[k] for k in both}, absent=self.absent | other.absent
        )
        # A known member of one side is only possibly in the other when that side is open.
        for mine, theirs in ((self, other), (other, self)):
            for key in mine.codes.keys() - both:
                if (reason := theirs.reason(key[0])) is not None and key not in theirs.absent:
                    result.open.setdefault(key[0], reason)
            for system, reason in mine.open.items():
                if system == ANY_SYSTEM:
                    result.open.update(
                        (s, r) for s, r in theirs.open.items() if s not in result.open
                    )
                elif theirs.reason(system) is not None:
                    result.open.setdefault(system, reason)
        return result

    def minus(self, excluded: _Members) -> _Members:
        result = _Members(open=dict(self.open))
        for key, display in self.codes.items():
            if key in excluded.codes:
                continue
            if (reason := excluded.reason(key[0])) is not None:
                result.open.setdefault(key[0], reason)
            else:
                result.codes[key] = display
        gone = {k for k in excluded.codes if result.reason(k[0]) is not None}
        result.absent = self.absent | gone
        return result


class _Expansion:
    """A ValueSet's members indexed for lookups; built once per ValueSet URL."""

    def __init__(self, members: _Members, folded_systems: set[str], held: bool = True) -> None:
        self.members = members
        self.held = held
        self.by_code: dict[str, list[str]] = {}
        self.folded: dict[Key, str] = {}
        for system, code in members.codes:
            self.by_code.setdefault(code, []).append(system)
            if system in folded_systems:
                self.folded[(system, code.casefold())] = code
                self.by_code.setdefault(code.casefold(), []).append(system)

    def find(self, system: str, code: str) -> Key | None:
        if (system, code) in self.members.codes:
            return system, code
        folded = self.folded.get((system, code.casefold())) if self.folded else None
        return (system, folded) if folded is not None else None


class Terminology:
    """Binding checks against the ValueSets and CodeSystems of a ``ConformanceSet``.

    Expansions and CodeSystem indexes are cached for the life of the object (make a new one
    after adding resources to the set); reads of the cache take no lock, builds are serialised
    by one lock (each happens once per URL).
    """

    def __init__(self, conformance: ConformanceSet) -> None:
        self._conformance = conformance
        self._lock = threading.RLock()
        self._expansions: dict[str, _Expansion] = {}
        self._systems: dict[str, _CodeSystemIndex | None] = {}
        self._implicit: dict[str, str] | None = None  # CodeSystem.valueSet -> CodeSystem.url

    def check_code(self, value_set_url: str, system: str | None, code: str) -> CodeCheck:
        """Whether ``code`` of ``system`` is a member of the ValueSet ``value_set_url``."""
        expansion = self._expansion(value_set_url)
        if not expansion.held:
            return CodeCheck(
                "unknown", f"Cannot check code '{code}': value set '{value_set_url}' is not held."
            )
        if system is None:
            return _check_without_system(expansion, value_set_url, code)
        key = expansion.find(system, code)
        if key is not None:
            return CodeCheck("valid", display=expansion.members.codes[key])
        if not expansion.members.lacks((system, code)):
            if system != UCUM or is_ucum_syntax(code):
                return CodeCheck(
                    "unknown",
                    f"Cannot tell whether code '{code}' of system '{system}' is in value set "
                    f"'{value_set_url}': {expansion.members.reason(system)}.",
                )
            return CodeCheck(
                "invalid",
                f"Code '{code}' of system '{system}' is not valid UCUM syntax, so it is not in "
                f"value set '{value_set_url}'.",
            )
        return CodeCheck(
            "invalid",
            f"Code '{code}' of system '{system}' is not in value set '{value_set_url}'.",
        )

    def check_coding_in_system(self, system: str, code: str) -> CodeCheck:
        """Whether ``code`` is defined by ``system`` (a held CodeSystem with complete content)."""
        index = self._code_system(system)
        if system == UCUM and not is_ucum_syntax(code):
            return CodeCheck("invalid", f"Code '{code}' is not valid UCUM syntax ({UCUM}).")
        if index is None or not index.complete:
            why = "not held" if index is None else f"held with content '{index.content}'"
            return CodeCheck(
                "unknown", f"Cannot check code '{code}': code system '{system}' is {why}."
            )
        found = index.find(code)
        if found is None:
            return CodeCheck("invalid", f"Code '{code}' is not defined in code system '{system}'.")
        return CodeCheck("valid", display=index.concepts[found].display)

    def expansion(self, value_set_url: str) -> frozenset[Key] | None:
        """Every (system, code) of the ValueSet; ``None`` when it cannot be fully enumerated."""
        expansion = self._expansion(value_set_url)
        if not expansion.held or expansion.members.open:
            return None
        return frozenset(expansion.members.codes)

    def _expansion(self, url: str, visiting: frozenset[str] = frozenset()) -> _Expansion:
        cached = self._expansions.get(url)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._expansions.get(url)
            if cached is None:
                if url in visiting:  # a ValueSet importing itself: no answer, and do not cache
                    return _Expansion(_Members(open={ANY_SYSTEM: f"{url} includes itself"}), set())
                cached = self._build(url, visiting | {url})
                self._expansions[url] = cached
            return cached

    def _build(self, url: str, visiting: frozenset[str]) -> _Expansion:
        value_set = self._conformance.value_set(url)
        if value_set is None:
            system = self._implicit_value_sets().get(url.split("|", 1)[0])
            if system is None:
                return _Expansion(_Members(), set(), held=False)
            members = self._include({"system": system}, inactive=False, visiting=visiting)
        else:
            members = self._compose(value_set, visiting)
        systems = {system for system, _ in members.codes}
        return _Expansion(members, {s for s in systems if self._case_insensitive(s)})

    def _compose(self, value_set: dict[str, Any], visiting: frozenset[str]) -> _Members:
        compose = value_set.get("compose")
        members = _Members(open={ANY_SYSTEM: "it has neither a compose nor a complete expansion"})
        inactive = False
        if isinstance(compose, dict):
            inactive = compose.get("inactive") is True
            members = _Members()
            for include in compose.get("include", []) or []:
                members = members.union(self._include(include, inactive, visiting))
            for exclude in compose.get("exclude", []) or []:
                members = members.minus(self._include(exclude, True, visiting, exclude=True))
        if members.open and _complete_expansion(value_set):
            return _members_of_expansion(value_set["expansion"].get("contains", []), inactive)
        return members

    def _include(
        self,
        include: dict[str, Any],
        inactive: bool,
        visiting: frozenset[str],
        exclude: bool = False,
    ) -> _Members:
        """The members of one ``compose.include`` (or, unfiltered by status, an exclude)."""
        parts = [self._imported(url, visiting) for url in include.get("valueSet", []) or []]
        system = include.get("system")
        if isinstance(system, str):
            parts.append(self._system_part(include, system, inactive, exclude))
        if not parts:
            return _Members()
        result = parts[0]
        for part in parts[1:]:
            result = result.intersect(part)
        return result

    def _imported(self, url: str, visiting: frozenset[str]) -> _Members:
        expansion = self._expansion(url, visiting)
        if expansion.held:
            return expansion.members
        return _Members(open={ANY_SYSTEM: f"the included value set '{url}' is not held"})

    def _system_part(
        self, include: dict[str, Any], system: str, inactive: bool, exclude: bool
    ) -> _Members:
        version = include.get("version")
        index = self._code_system(f"{system}|{version}" if version else system)
        if include.get("concept"):
            return _listed(include["concept"], system, index, inactive, exclude)
        if index is None or not index.complete:
            name = "UCUM" if system == UCUM else f"code system '{system}'"
            why = "is not held" if index is None else f"has content '{index.content}'"
            return _Members(open={system: f"{name} {why}, so its codes cannot be enumerated"})
        selected = set(index.concepts)
        for rule in include.get("filter", []) or []:
            prop, op, value = (str(rule.get(k)) for k in ("property", "op", "value"))
            matched = index.select(prop, op, value)
            if matched is None:
                reason = f"the filter '{prop} {op} {value}' on '{system}' is not supported"
                logger.debug("ValueSet filter not supported: %s", reason)
                return _Members(open={system: reason})
            selected &= matched
        return _Members(
            {
                (system, code): index.concepts[code].display
                for code in selected
                if code in index.concepts and (exclude or _usable(index, code, inactive))
            }
        )

    def _code_system(self, url: str) -> _CodeSystemIndex | None:
        if url in self._systems:
            return self._systems[url]
        with self._lock:
            if url not in self._systems:
                resource = self._conformance.code_system(url)
                supplement = resource is not None and resource.get("content") == "supplement"
                self._systems[url] = (
                    None if resource is None or supplement else _CodeSystemIndex(resource)
                )
            return self._systems[url]

    def _case_insensitive(self, system: str) -> bool:
        index = self._code_system(system)
        return index is not None and not index.case_sensitive

    def _implicit_value_sets(self) -> dict[str, str]:
        """``CodeSystem.valueSet`` -> CodeSystem URL, read once on the first unknown ValueSet."""
        with self._lock:
            if self._implicit is None:
                implicit: dict[str, str] = {}
                for url in self._conformance.urls("CodeSystem"):
                    resource = self._conformance.code_system(url) if "|" not in url else None
                    if resource is not None and isinstance(resource.get("valueSet"), str):
                        implicit[resource["valueSet"].split("|", 1)[0]] = url
                self._implicit = implicit
            return self._implicit


def _listed(
    concepts: list[dict[str, Any]],
    system: str,
    index: _CodeSystemIndex | None,
    inactive: bool,
    exclude: bool,
) -> _Members:
    """The codes listed in an include; a complete CodeSystem must define them."""
    codes: dict[Key, str | None] = {}
    for listed in concepts:
        code = listed.get("code")
        if not isinstance(code, str):
            continue
        if index is None:
            codes[(system, code)] = listed.get("display")
            continue
        found = index.find(code)
        if found is None and index.complete:
            continue  # not a code of the system, so no member
        if exclude or found is None or _usable(index, found, inactive):
            known = index.concepts.get(found) if found is not None else None
            display = listed.get("display") or (known.display if known else None)
            codes[(system, found or code)] = display
    return _Members(codes)


def _usable(index: _CodeSystemIndex, code: str, inactive: bool) -> bool:
    """Abstract concepts are never members; inactive ones only with ``compose.inactive``."""
    concept = index.concepts[code]
    return concept.selectable and (inactive or concept.active)


def _check_without_system(expansion: _Expansion, url: str, code: str) -> CodeCheck:
    """A bare ``code`` is a member when exactly one system of the ValueSet holds it."""
    systems = sorted(
        set(expansion.by_code.get(code, []) or expansion.by_code.get(code.casefold(), []))
    )
    open_reason = next(iter(expansion.members.open.values()), None)
    if len(systems) == 1 and open_reason is None:
        key = expansion.find(systems[0], code)
        return CodeCheck("valid", display=expansion.members.codes[key] if key else None)
    if not systems and open_reason is None:
        return CodeCheck("invalid", f"Code '{code}' is not in value set '{url}' (no system given).")
    why = f"it is defined by {', '.join(systems)}" if len(systems) > 1 else open_reason
    return CodeCheck(
        "unknown",
        f"Cannot determine the system of code '{code}' in value set '{url}': {why}.",
    )


def _complete_expansion(value_set: dict[str, Any]) -> bool:
    """A stored expansion we may use: present, not paged, and not cut short."""
    expansion = value_set.get("expansion")
    if not isinstance(expansion, dict) or expansion.get("offset", 0):
        return False
    if any(
        e.get("valueBoolean")
        for e in expansion.get("extension", [])
        if "toocostly" in e.get("url", "")
    ):
        return False
    total = expansion.get("total")
    return total is None or total == sum(
        1 for _ in _walk(expansion.get("contains", [])) if _.get("code")
    )


def _members_of_expansion(contains: list[dict[str, Any]], inactive: bool) -> _Members:
    codes: dict[Key, str | None] = {}
    for entry in _walk(contains):
        system, code = entry.get("system"), entry.get("code")
        if (
            system
            and code
            and not entry.get("abstract")
            and (inactive or not entry.get("inactive"))
        ):
            codes[(system, code)] = entry.get("display")
    return _Members(codes)


def _walk(contains: list[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for entry in contains:
        yield entry
        yield from _walk(entry.get("contains", []) or [])


def _property_value(prop: dict[str, Any]) -> str:
    for key, value in prop.items():
        if key.startswith("value"):
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value.get("code")) if isinstance(value, dict) else str(value)
    return ""


def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


# UCUM's grammar (https://ucum.org/ucum#section-Syntax-Rules) without the atom tables: a
# malformed expression is certainly no unit; a well-formed one may still name no real atom.
_UCUM_TOKEN = re.compile(r"\{[^{}]*\}|[./()]|(?:[^./(){}\[\]]|\[[^\[\]{}]*\])+")


def is_ucum_syntax(code: str) -> bool:
    """Whether ``code`` follows UCUM's expression syntax (terms, operators, brackets)."""
    tokens: list[str] = []
    pos = 0
    while pos < len(code):
        match = _UCUM_TOKEN.match(code, pos)
        if match is None:
            return False
        tokens.append(match.group())
        pos = match.end()
    if any(not (" " < ch <= "~") for t in tokens if t[0] != "{" for ch in t):
        return False
    if any(not (" " <= ch <= "~") for t in tokens if t[0] == "{" for ch in t):
        return False
    rest = tokens[1:] if tokens[:1] == ["/"] else tokens
    return _ucum_term(rest, 0) == len(rest) and bool(rest)


def _ucum_term(tokens: list[str], pos: int) -> int:
    """Index after the term starting at ``pos``; -1 when there is none."""
    while True:
        token = tokens[pos] if pos < len(tokens) else ""
        if token == "(":
            pos = _ucum_term(tokens, pos + 1)
            if pos < 0 or pos >= len(tokens) or tokens[pos] != ")":
                return -1
            pos += 1
        elif token not in ("", ".", "/", ")"):
            pos += 1
            if token[0] != "{" and pos < len(tokens) and tokens[pos][0] == "{":
                pos += 1  # an annotation on a unit
        else:
            return -1
        if pos < len(tokens) and tokens[pos] in (".", "/"):
            pos += 1
        else:
            return pos
