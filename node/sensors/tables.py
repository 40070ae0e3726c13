"""The node's tables of sensor readings: raw readings, their aggregates, and rule episodes.

A reading is stored once per sensor and time (the unique key makes a repeat a
duplicate, whatever process sends it). Raw readings are kept for
``sensor_raw_retention_s``; the retention task folds older ones into
``sensor_aggregates`` (one row per sensor and ``sensor_aggregate_s`` window),
kept for ``sensor_aggregate_retention_s``. An episode is one stretch, in event
time, during which one rule of one sensor held: it carries the flag it raised.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from schema.storage import UTCDateTime

__all__ = ["SensorTables", "define_sensor_tables"]


@dataclass(frozen=True, slots=True)
class SensorTables:
    """``sensor_readings``, ``sensor_aggregates`` and ``sensor_episodes``."""

    readings: sa.Table
    aggregates: sa.Table
    episodes: sa.Table


def define_sensor_tables(metadata: sa.MetaData) -> SensorTables:
    """The sensor tables in ``metadata``."""
    readings = sa.Table(
        "sensor_readings",
        metadata,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sensor_id", sa.String(64), nullable=False),
        sa.Column("t", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("sensor_id", "t", name="uq_sensor_readings_sensor_t"),
    )
    aggregates = sa.Table(
        "sensor_aggregates",
        metadata,
        sa.Column("sensor_id", sa.String(64), primary_key=True),
        sa.Column("start", UTCDateTime(), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
    )
    episodes = sa.Table(
        "sensor_episodes",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_id", sa.String(64), nullable=False, index=True),
        sa.Column("rule_id", sa.String(40), nullable=False),
        # Event times: the condition began, held long enough, and ended (null: it lasts).
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("triggered_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.Column("flag_id", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    return SensorTables(readings, aggregates, episodes)
