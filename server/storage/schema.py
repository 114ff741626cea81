"""SQL tables: current resources, every version, and the typed search indexes.

HAPI-like shape: ``resource`` holds the current version of each resource (one
primary-key lookup per read), ``resource_version`` every version in a global
order (``seq``); ``sync_outbox`` what ``ilp sync`` must still send upstream.
Bodies are JSON, stored as JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONBody = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Resource(Base):
    """The current version of every resource, tombstones included (``deleted``)."""

    __tablename__ = "resource"

    res_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    res_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSONBody, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The Organization a resource belongs to, for facility-bound access control.
    org_scope: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_resource_type_updated", "res_type", "last_updated"),
        Index("ix_resource_org_scope", "org_scope"),
    )


class ResourceVersion(Base):
    """Every version ever written; ``seq`` orders all writes of the server."""

    __tablename__ = "resource_version"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSONBody, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ux_version_resource", "res_type", "res_id", "version_id", unique=True),
        Index("ix_version_type_seq", "res_type", "seq"),
    )


class _IndexRow:
    """Columns every index table shares: the resource, the parameter and the composite group."""

    row_id: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(128))
    # 0 for plain rows; composite components of one focus element share a number.
    grp: Mapped[int] = mapped_column(SmallInteger, default=0)


def _indexes(table: str, *value_columns: str) -> tuple[Index, Index]:
    # res_id last: a condition's list of ids is read from the index alone (no table rows)
    return (
        Index(f"ix_{table}_lookup", "res_type", "param", *value_columns, "res_id"),
        Index(f"ix_{table}_resource", "res_type", "res_id"),
    )


class TokenIndex(_IndexRow, Base):
    """token: ``system|code``, plus the display text for ``:text``."""

    __tablename__ = "sp_token"

    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    text: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (
        *_indexes("sp_token", "code", "system"),
        Index("ix_sp_token_text", "res_type", "param", "text", "res_id"),
    )


class StringIndex(_IndexRow, Base):
    """string: normalised (case and accents folded) for the default and :contains, and exact."""

    __tablename__ = "sp_string"

    value_norm: Mapped[str] = mapped_column(String(255))
    value_exact: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        Index(
            "ix_sp_string_lookup",
            "res_type",
            "param",
            "value_norm",
            "res_id",
            postgresql_ops={"value_norm": "varchar_pattern_ops"},  # LIKE 'x%' uses the index
        ),
        Index("ix_sp_string_resource", "res_type", "res_id"),
    )


class ReferenceIndex(_IndexRow, Base):
    """reference: a local target (type, id) or an external/canonical URL."""

    __tablename__ = "sp_reference"

    target_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    url: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (
        *_indexes("sp_reference", "target_id", "target_type"),
        Index("ix_sp_reference_target", "target_type", "target_id"),
        Index("ix_sp_reference_url", "res_type", "param", "url", "res_id"),
    )


class DateIndex(_IndexRow, Base):
    """date: the UTC range ``[low, high]`` a value stands for (naive UTC, high inclusive)."""

    __tablename__ = "sp_date"

    low: Mapped[datetime] = mapped_column(DateTime)
    high: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (
        *_indexes("sp_date", "low", "high"),
        Index("ix_sp_date_high", "res_type", "param", "high", "res_id"),
    )


class NumberIndex(_IndexRow, Base):
    __tablename__ = "sp_number"

    value: Mapped[float] = mapped_column(Float)

    __table_args__ = _indexes("sp_number", "value")


class QuantityIndex(_IndexRow, Base):
    """quantity: value with its system, code and human unit (``|kg`` matches code or unit)."""

    __tablename__ = "sp_quantity"

    value: Mapped[float] = mapped_column(Float)
    system: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = _indexes("sp_quantity", "code", "value")


class UriIndex(_IndexRow, Base):
    __tablename__ = "sp_uri"

    uri: Mapped[str] = mapped_column(String(255))

    __table_args__ = _indexes("sp_uri", "uri")


class SearchParamState(Base):
    """A SearchParameter stored on the server, and how far ``ilp reindex`` has indexed it.

    ``indexing``: writes index it, searches do not use it yet; ``active``: searchable.
    The cursor is the last resource (type, id) reindexed, so an interrupted run resumes.
    """

    __tablename__ = "search_param_state"

    res_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    cursor_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cursor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SyncOutbox(Base):
    """One row per write, in the write's transaction: what ``ilp sync`` must send upstream.

    ``state``: pending (to send, once ``not_before`` has passed), sent, failed (the upstream
    refused it, or transient failures ran out), parked (waits on something only a person can
    fix, e.g. a NIK the upstream does not know).  A claim (``claimed_by``/``claimed_until``)
    keeps other workers away while one sends it.
    """

    __tablename__ = "sync_outbox"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    res_type: Mapped[str] = mapped_column(String(64))
    res_id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONBody, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_sync_outbox_state", "state", "seq"),
        Index("ix_sync_outbox_resource", "res_type", "res_id", "seq"),
    )


class SyncIdMap(Base):
    """A local resource's id at the upstream (for a Patient: the IHS number's resource id)."""

    __tablename__ = "sync_id_map"

    res_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    res_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    upstream_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiClient(Base):
    """An OAuth2 client of this server (``ilp clients``, docs/security.md): who may call, and
    where.  The secret is kept only as a salted scrypt hash."""

    __tablename__ = "api_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(2000))
    # The Organization the client acts for (its partOf subtree), or a Kemendagri code prefix;
    # neither: every facility (a national client).
    organization: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(16), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # SMART backend services: the public JWK Set its client assertions are signed with
    # (private_key_jwt); such a client has no secret (``secret_hash`` empty).
    jwks: Mapped[str | None] = mapped_column(Text, nullable=True)


class ClientAssertion(Base):
    """``jti`` of client assertions already used, so none is accepted twice (until it expires)."""

    __tablename__ = "client_assertion"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# The PWS indicators (services/indicators, docs/indicators.md): facts kept with each write,
# and per-month sums recomputed when a write changed the month.


class IndicatorPerson(Base):
    """A Patient as the indicators count them: age, sex, home desa, Posyandu seen last."""

    __tablename__ = "ind_person"

    patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    birth_date: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Kemendagri desa code, "" if unknown; indexed: a desa's month is recounted on its own
    village: Mapped[str] = mapped_column(String(16), index=True)
    posyandu: Mapped[str | None] = mapped_column(String(64), nullable=True)
    posyandu_day: Mapped[str | None] = mapped_column(String(10), nullable=True)


class IndicatorEvent(Base):
    """One counted fact of a resource: a measurement, a z-score, a visit."""

    __tablename__ = "ind_event"

    res_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    res_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # local date of the event, YYYY-MM-DD
    month: Mapped[str] = mapped_column(String(7))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    value2: Mapped[float | None] = mapped_column(Float, nullable=True)
    facility: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_ind_event_month_kind", "month", "kind"),
        Index("ix_ind_event_patient_day", "patient_id", "day"),
    )


class IndicatorFacility(Base):
    """An Organization of the health network: its ILP type, desa and parent."""

    __tablename__ = "ind_facility"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(32), nullable=True)  # ilp-facility-type
    village: Mapped[str | None] = mapped_column(String(16), nullable=True)
    parent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    location: Mapped[str | None] = mapped_column(String(64), nullable=True)


class IndicatorArea(Base):
    """A kabupaten, kecamatan or desa named by an ilp-wilayah Location."""

    __tablename__ = "ind_area"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    location: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class IndicatorSummary(Base):
    """A month's numerator and denominator of an indicator in one desa and Posyandu."""

    __tablename__ = "ind_summary"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    village: Mapped[str] = mapped_column(String(16), primary_key=True)
    posyandu: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for none
    indicator: Mapped[str] = mapped_column(String(32), primary_key=True)
    numerator: Mapped[int] = mapped_column(Integer)
    denominator: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IndicatorMonth(Base):
    """A month whose summary rows were computed (a month without a row never was)."""

    __tablename__ = "ind_month"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IndicatorChange(Base):
    """A write that changed a desa's month: that part of the summary is stale until recomputed.
    Insert-only, so concurrent writers never wait on each other; a recompute deletes the rows it
    saw."""

    __tablename__ = "ind_change"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), index=True)
    village: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: every desa


INDEX_TABLES = {
    "token": TokenIndex,
    "string": StringIndex,
    "reference": ReferenceIndex,
    "date": DateIndex,
    "number": NumberIndex,
    "quantity": QuantityIndex,
    "uri": UriIndex,
}


metadata = Base.metadata
