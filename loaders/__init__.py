"""Loaders: sync the processed layout (metrics/ Parquet, alerts/ JSON Lines) into a database.

``sync(source, target)`` lists what the source holds, compares it with the target's
ledger and loads what is new or changed, one object at a time, exactly once.
Targets: PostgreSQL/TimescaleDB (:mod:`loaders.postgres`) and InfluxDB (:mod:`loaders.influx`).
"""
