"""Hypothesis strategies for fuzzing the FHIR API: requests as plain values.

A ``Call`` is one HTTP request (method, path, query, body, headers, endpoint label).  Bodies
come from real seed resources (the demo district) mutated, from random JSON, and from Bundles
with urn:uuid references; queries from the supported parameters of a few types, with modifiers,
prefixes, chains, result parameters and SQL metacharacters.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

from server.demo.district import DemoSize, generate

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
TYPES = ("Patient", "Observation", "Encounter", "Organization", "Location", "Practitioner")
OTHER_TYPES = ("Condition", "Bundle", "SearchParameter", "Nope", "patient", "$validate")
SQL_META = ("'", '"', ";", "--", "%", "_", "\\", "|", "' OR '1'='1", "%' --", "\\%", "a|b")
# A marker that ``dump`` replaces with a deeply nested array (json cannot encode one).
_DEEP = "\x00deep:"
_RAW_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#")


@dataclass(frozen=True)
class Call:
    endpoint: str
    method: str
    path: str
    query: str = ""
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # a rejected transaction must leave the store as it was; a batch may be partly applied
    atomic: bool = True


@cache
def seeds() -> tuple[dict[str, Any], ...]:
    """Real resources: the tiniest demo district (27 resources of 7 types)."""
    return tuple(
        generate(DemoSize(kecamatan=1, desa_per_kecamatan=1, households_per_desa=1, months=1))
    )


def seeds_of(rtype: str) -> list[dict[str, Any]]:
    return [r for r in seeds() if r["resourceType"] == rtype]


def dump(value: Any) -> bytes:
    """JSON bytes, with the deep-nesting markers expanded."""
    text = json.dumps(value, ensure_ascii=False)
    while _DEEP in text or "\\u0000deep:" in text:
        start = text.index("\\u0000deep:")
        end = text.index('"', start)
        depth = int(text[start + len("\\u0000deep:") : end])
        text = text[: start - 1] + "[" * depth + "]" * depth + text[end + 1 :]
    return text.encode("utf-8", "surrogatepass")


# -- values ----------------------------------------------------------------------------------

text = st.text(max_size=20)
weird_text = st.one_of(
    text,
    st.sampled_from(SQL_META),
    st.sampled_from(["", " ", "\x01", "\ud800", "é", "ß", "İ", "\u202e", "🧪", "\ufeff"]),
    st.integers(1, 70_000).map(lambda n: "x" * n),
)
bad_dates = st.sampled_from(
    [
        "2026-13-02",
        "2026-02-30",
        "0000-00-00",
        "2026-11-02T25:00:00Z",
        "2026-11-02T09:30",
        "20261102",
        "2026-1-2",
        "-2026",
        "9999-12-31T23:59:59+14:00",
        "2026-11-02T09:30:00+99:00",
        "now",
        "",
    ]
)
bad_refs = st.sampled_from(
    [
        "Patient/",
        "Patient/../../x",
        "urn:uuid:nope",
        "#",
        "#missing",
        "Nope/1",
        "Patient/a b",
        "http://example.org/fhir/Patient/1",
        "Patient?identifier=x",
        "Patient/" + "9" * 100,
        "",
        "Patient/p1/_history/x",
        "urn:oid:1.2.x",
    ]
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    weird_text,
)
random_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
deep = st.sampled_from([30, 200, 900, 1100, 3000]).map(lambda n: f"{_DEEP}{n}")
replacement = st.one_of(
    json_scalars,
    random_json,
    bad_dates,
    bad_refs,
    deep,
    bad_refs.map(lambda r: {"reference": r}),
    st.builds(list),
    st.builds(dict),
    st.builds(lambda: [None]),
)


def _locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _locations(item, (*path, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, rtype: str | None = None) -> dict[str, Any]:
    """A seed resource with 0-4 mutations at random places."""
    pool = seeds_of(rtype) if rtype else list(seeds())
    resource = copy.deepcopy(draw(st.sampled_from(pool)))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 4]))):
        where = draw(st.sampled_from(_locations(resource)[1:] or [("id",)]))
        parent: Any = resource
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        action = draw(st.sampled_from(["drop", "replace", "replace", "key", "wrap", "null"]))
        if action == "drop":
            del parent[last]
        elif action == "null":
            parent[last] = None
        elif action == "wrap":  # wrong JSON type: a list where a single value is, or the reverse
            old = parent[last]
            parent[last] = old[0] if isinstance(old, list) and old else [old]
        elif action == "key" and isinstance(parent, dict):
            parent[
                draw(
                    st.sampled_from(
                        [
                            "_" + str(last),
                            "extension",
                            "id",
                            "x" + str(last),
                            "resourceType",
                            "contained",
                            "meta",
                            "",
                        ]
                    )
                )
            ] = draw(replacement)
        else:
            parent[last] = draw(replacement)
        if not resource:
            break
    return resource if isinstance(resource, dict) else {"resourceType": rtype}


resource_bodies = st.one_of(mutated(), random_json)


# -- searches --------------------------------------------------------------------------------

PARAMS = {
    "Patient": [
        "name",
        "family",
        "given",
        "identifier",
        "birthdate",
        "gender",
        "_id",
        "address-village",
        "address-district",
        "general-practitioner",
        "organization",
        "_lastUpdated",
        "telecom",
        "active",
        "link",
        "deceased",
        "address",
    ],
    "Observation": [
        "code",
        "subject",
        "patient",
        "date",
        "value-quantity",
        "status",
        "category",
        "encounter",
        "component-code-value-quantity",
        "code-value-quantity",
        "performer",
        "value-string",
        "_id",
        "_lastUpdated",
        "based-on",
    ],
    "Encounter": [
        "subject",
        "patient",
        "date",
        "status",
        "class",
        "service-provider",
        "location",
        "participant",
        "type",
        "length",
    ],
    "Organization": ["name", "identifier", "type", "partof", "address-village", "active"],
    "Location": ["name", "organization", "partof", "type", "address", "near"],
    "Practitioner": ["name", "identifier", "active"],
}
MODIFIERS = [
    "",
    ":exact",
    ":contains",
    ":missing",
    ":text",
    ":not",
    ":in",
    ":not-in",
    ":identifier",
    ":above",
    ":below",
    ":Patient",
    ":Nope",
    ":",
    "::",
    ":exact:x",
]
PREFIXES = ["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx"]
values = st.one_of(
    st.sampled_from(
        [
            "3201234567890001",
            "Siti",
            "2026",
            "2026-11-02T09:30:00+07:00",
            "12.4",
            "12.4|http://unitsofmeasure.org|kg",
            "http://loinc.org|29463-7",
            "|x",
            "x|",
            "true",
            "false",
            "Patient/p1",
            "final",
            "1e999",
            "-0",
            "2026-13",
            "a,b",
            "a\\,b",
            "$",
            "29463-7$12",
            "http://x|y$gt5",
            "\\",
            "%01",
            "%00",
            "²",
            "٣",
            "99999999999999999999",
            "9" * 5000,
            "1e99999999",
            "0e400",
        ]
    ),
    weird_text,
)


@st.composite
def search_pair(draw: st.DrawFn, rtype: str) -> tuple[str, str]:
    name = draw(st.sampled_from(PARAMS[rtype] + ["_has:Observation:patient:code", "_nope"]))
    kind = draw(st.sampled_from(["plain", "plain", "chain", "result"]))
    if kind == "chain":
        name = draw(
            st.sampled_from(
                ["subject", "patient", "subject:Patient", "encounter", "organization", "partof"]
            )
        )
        name += "." + draw(
            st.sampled_from(
                ["name", "identifier", "birthdate", "x", "subject.name", "organization.name"]
            )
        )
    elif kind == "result":
        name = draw(
            st.sampled_from(
                [
                    "_count",
                    "_sort",
                    "_include",
                    "_revinclude",
                    "_include:iterate",
                    "_summary",
                    "_total",
                    "_elements",
                    "_cursor",
                    "_format",
                    "_pretty",
                    "_offset",
                    "_contained",
                ]
            )
        )
        value = draw(
            st.one_of(
                st.sampled_from(
                    [
                        "-1",
                        "0",
                        "1",
                        "10",
                        "99999999999999999999",
                        "1.5",
                        "abc",
                        "",
                        "Observation:subject",
                        "Observation:subject:Patient",
                        "*",
                        "Patient:nope",
                        "Encounter:subject",
                        "-date",
                        "date,-_id",
                        "name",
                        "-",
                        "_lastUpdated",
                        "count",
                        "text",
                        "data",
                        "accurate",
                        "json",
                        "xml",
                        "id,name",
                    ]
                ),
                weird_text,
            )
        )
        return name, value
    elif draw(st.booleans()):
        name += draw(st.sampled_from(MODIFIERS))
    prefix = draw(st.sampled_from(PREFIXES)) if draw(st.booleans()) else ""
    return name, prefix + draw(values)


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """Percent-encoded; lone surrogates become bytes that are not UTF-8."""
    return urlencode([(k, v.encode("utf-8", "surrogatepass")) for k, v in pairs])


@st.composite
def query_strings(draw: st.DrawFn, rtype: str) -> str:
    pairs = draw(st.lists(search_pair(rtype), max_size=4))
    if draw(st.booleans()):
        return encode_query(pairs)
    # unencoded: the metacharacters (and '%' escapes that are not) reach werkzeug's parser raw
    raw = "&".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")
    return quote(raw, safe=_RAW_SAFE)


# -- bundles ---------------------------------------------------------------------------------

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "get", "FOO", None]


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 5))
    urns = [f"urn:uuid:{uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))}" for _ in range(count)]
    entries: list[Any] = []
    for index in range(count):
        resource = draw(st.one_of(mutated(), st.none(), random_json))
        if isinstance(resource, dict) and urns and draw(st.booleans()):
            # point a reference at another entry (or at one that is not there)
            target = draw(st.sampled_from([*urns, "urn:uuid:" + str(uuid.UUID(int=index))]))
            resource[draw(st.sampled_from(["subject", "partOf", "encounter", "organization"]))] = {
                "reference": target
            }
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        rtype = rtype if isinstance(rtype, str) else draw(st.sampled_from(TYPES))
        url = draw(
            st.sampled_from(
                [
                    rtype,
                    f"{rtype}/p{index}",
                    f"{rtype}?identifier=x|y",
                    f"{rtype}/",
                    "",
                    "/",
                    "x y",
                    f"{rtype}/{index}/_history/1",
                    "metadata",
                    "?",
                    f"{rtype}?_count=abc",
                    f"{rtype}/$validate",
                ]
            )
        )
        entry: dict[str, Any] = {"fullUrl": urns[index] if draw(st.booleans()) else None}
        if resource is not None:
            entry["resource"] = resource
        method = draw(st.sampled_from(METHODS))
        if method is not None:
            entry["request"] = {"method": method, "url": url}
            if draw(st.booleans()):
                entry["request"][
                    draw(st.sampled_from(["ifNoneExist", "ifMatch", "ifNoneMatch"]))
                ] = draw(values)
        if entry["fullUrl"] is None:
            del entry["fullUrl"]
        entries.append(draw(st.one_of(st.just(entry), st.just(entry), random_json)))
    kind = draw(
        st.sampled_from(
            ["batch", "transaction", "transaction", "collection", "other", "searchset", None]
        )
    )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "entry": entries}
    if kind is not None:
        bundle["type"] = kind
    return bundle


# -- calls -----------------------------------------------------------------------------------


def json_call(
    endpoint: str,
    method: str,
    path: str,
    body: Any,
    query: str = "",
    atomic: bool = True,
    media: str = FHIR_JSON,
) -> Call:
    return Call(endpoint, method, path, query, dump(body), {"Content-Type": media}, atomic)


ids = st.one_of(
    st.sampled_from([r["id"] for r in seeds()][:6]),
    st.sampled_from(["p1", "x" * 65, "a.b", "-", "A-1", "%27", "1;DROP", "%01", "%00", "é"]),
)
types = st.sampled_from(TYPES)
any_types = st.one_of(types, st.sampled_from(OTHER_TYPES))
patch_ops = st.lists(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "nope"]),
            "path": st.sampled_from(
                [
                    "/id",
                    "/resourceType",
                    "/meta",
                    "/name/0/family",
                    "/birthDate",
                    "/status",
                    "/-",
                    "",
                    "/active",
                    "/x",
                    "/subject/reference",
                ]
            ),
        },
        optional={"value": replacement, "from": st.sampled_from(["/name", "/id", "/x"])},
    ),
    max_size=3,
)


if_match = st.one_of(
    st.sampled_from(['W/"1"', '"2"', 'W/"0"', "W/", "*", 'W/"²"', 'W/"99999999999999999999"']),
    text.map(
        lambda t: (
            t.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", "").replace("\n", "")
        )
    ),
)


@st.composite
def calls(draw: st.DrawFn) -> Call:
    """One request to one of the endpoints."""
    endpoint = draw(
        st.sampled_from(
            [
                "create",
                "update",
                "conditional-update",
                "patch",
                "delete",
                "conditional-delete",
                "search",
                "search-post",
                "bundle",
                "validate",
                "history",
                "read",
                "raw",
            ]
        )
    )
    rtype = draw(types)
    if endpoint == "create":
        body = draw(st.one_of(mutated(rtype), resource_bodies))
        call = json_call(
            endpoint,
            "POST",
            f"/fhir/{draw(any_types)}" if draw(st.booleans()) else f"/fhir/{rtype}",
            body,
        )
        if draw(st.booleans()):
            call.headers["If-None-Exist"] = draw(query_strings(rtype))
        return call
    if endpoint == "update":
        body = draw(mutated(rtype))
        rid = body.get("id") if draw(st.integers(0, 2)) else None
        if not isinstance(rid, str) or not rid:
            rid = draw(ids)
        call = json_call(endpoint, "PUT", f"/fhir/{rtype}/{quote(rid, safe='')}", body)
        if draw(st.booleans()):
            call.headers["If-Match"] = draw(if_match)
        return call
    if endpoint == "conditional-update":
        return json_call(
            endpoint, "PUT", f"/fhir/{rtype}", draw(mutated(rtype)), draw(query_strings(rtype))
        )
    if endpoint == "patch":
        return json_call(
            endpoint,
            "PATCH",
            f"/fhir/{rtype}/{draw(ids)}",
            draw(st.one_of(patch_ops, random_json)),
            media=JSON_PATCH,
        )
    if endpoint == "delete":
        return Call(endpoint, "DELETE", f"/fhir/{draw(any_types)}/{draw(ids)}")
    if endpoint == "conditional-delete":
        return Call(endpoint, "DELETE", f"/fhir/{rtype}", draw(query_strings(rtype)))
    if endpoint == "search":
        lenient = draw(st.sampled_from([{}, {"Prefer": "handling=lenient"}]))
        return Call(endpoint, "GET", f"/fhir/{rtype}", draw(query_strings(rtype)), None, lenient)
    if endpoint == "search-post":
        return Call(
            endpoint,
            "POST",
            f"/fhir/{rtype}/_search",
            "",
            draw(query_strings(rtype)).encode("ascii"),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    if endpoint == "bundle":
        bundle = draw(st.one_of(bundles(), bundles(), random_json))
        atomic = not (isinstance(bundle, dict) and bundle.get("type") == "batch")
        return json_call(endpoint, "POST", "/fhir", bundle, atomic=atomic)
    if endpoint == "validate":
        path = f"/fhir/{draw(any_types)}/$validate"
        if draw(st.booleans()):
            path = f"/fhir/{rtype}/{draw(ids)}/$validate"
        query = draw(
            st.sampled_from(
                [
                    "",
                    "mode=create",
                    "mode=update",
                    "mode=delete",
                    "mode=x",
                    "profile=http://nope",
                    "profile='",
                ]
            )
        )
        return json_call(endpoint, "POST", path, draw(st.one_of(mutated(), resource_bodies)), query)
    if endpoint == "history":
        path = draw(
            st.sampled_from(
                ["/fhir/_history", f"/fhir/{rtype}/_history", f"/fhir/{rtype}/{draw(ids)}/_history"]
            )
        )
        pairs = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(
                        ["_count", "_since", "_at", "_summary", "_list", "_sort", "_cursor"]
                    ),
                    st.one_of(values, bad_dates, st.sampled_from(["count", "-1", "2026", "0"])),
                ),
                max_size=3,
            )
        )
        return Call(endpoint, "GET", path, encode_query(pairs))
    if endpoint == "read":  # read and vread; a read never writes
        version = draw(st.one_of(values, st.sampled_from(["1", "2", "0"])))
        path = f"/fhir/{rtype}/{draw(ids)}" + draw(st.sampled_from(["", f"/_history/{version}"]))
        return Call(endpoint, "GET", quote(path.encode("utf-8", "surrogatepass"), safe="/$"))
    # raw: bytes that are not JSON, or JSON with the wrong media type
    body = draw(
        st.one_of(
            st.binary(max_size=50),
            st.sampled_from([b"{", b"\xff\xfe", b"null", b"[]", b'{"a":1}{}']),
        )
    )
    media = draw(st.sampled_from([FHIR_JSON, "text/plain", "application/xml", ""]))
    method = draw(st.sampled_from(["POST", "PUT"]))
    path = f"/fhir/{rtype}" if method == "POST" else f"/fhir/{rtype}/{draw(ids)}"
    return Call(endpoint, method, path, "", body, {"Content-Type": media} if media else {})
