"""Monthly cost of the event-driven loader (terraform ``loader``), printed by ``cost`` beside ingest.

Each upload makes two processed objects (metrics Parquet, alerts JSON Lines); each is one
notification, one SQS message, one S3 GET and one load. The loader's batching window
(60 s, up to 100 messages) makes about one invocation a minute while uploads flow. The
secret is read once per container; one read per invocation is the upper bound used here.
VPC networking (NAT gateway or interface endpoints) depends on the VPC and is not included.
"""

from __future__ import annotations

from gpulake_cli.cost_model import PRICES, SQS_POLLS, Estimate, Fleet

PROCESSED_PER_UPLOAD = 2  # metrics/ Parquet + alerts/ JSON Lines
BATCH_SIZE = 100  # loader.batch_size
WINDOW_S = 60  # loader.batching_window_s
OBJECT_S = 0.05  # GET + ledger check + commit per object
ROWS_PER_S = 100_000  # COPY into PostgreSQL, conservative against `make bench` (scripts/bench_load.py)
INVOCATION_S = 0.2  # aggregate refresh and batch bookkeeping
LAMBDA_GB = 1.0
ALARMS = 4
EMF_METRICS = 4  # ObjectsLoaded, RowsLoaded, ObjectsRejected, LoadFailures
LOG_BYTES_PER_OBJECT = 400
LOADER_PRICES = {"secret_month": 0.40, "secret_call": 0.05 / 10_000}


def invocations(fleet: Fleet) -> float:
    """Batches a month: one per window while objects arrive, more when a window holds over BATCH_SIZE."""
    notifications = fleet.objects * PROCESSED_PER_UPLOAD
    windows = 730 * 3600 / WINDOW_S
    return min(notifications, max(notifications / BATCH_SIZE, windows))


def loader(fleet: Fleet) -> Estimate:
    p, e = PRICES | LOADER_PRICES, Estimate()
    objects = fleet.objects * PROCESSED_PER_UPLOAD
    calls = invocations(fleet)
    seconds = objects * OBJECT_S + fleet.samples / ROWS_PER_S + calls * INVOCATION_S
    gb_s = seconds * LAMBDA_GB
    e.add(
        "Lambda compute",
        f"{objects:,.0f} objects x {OBJECT_S} s + {fleet.samples:,.0f} rows / {ROWS_PER_S:,}/s "
        f"+ {calls:,.0f} batches x {INVOCATION_S} s = {gb_s:,.0f} GB-s x ${p['lambda_gb_s_arm']}",
        gb_s * p["lambda_gb_s_arm"],
    )
    e.add(
        "Lambda requests",
        f"{calls:,.0f} batches x ${p['lambda_request'] * 1e6:.2f}/M",
        calls * p["lambda_request"],
    )
    sqs = objects * 3 + SQS_POLLS
    e.add(
        "SQS",
        f"{objects:,.0f} x 3 + {SQS_POLLS:,} polls = {sqs:,.0f} x ${p['sqs_request'] * 1e6:.2f}/M",
        sqs * p["sqs_request"],
    )
    e.add("S3 GET", f"{objects:,.0f} x ${p['s3_get'] * 1000}/1,000", objects * p["s3_get"])
    e.add("S3 LIST", "0: notifications name the objects (sync --full lists, for backfill only)", 0.0)
    e.add(
        "Secrets Manager",
        f"1 secret x ${p['secret_month']} + at most {calls:,.0f} reads x ${p['secret_call'] * 10_000:.2f}/10,000",
        p["secret_month"] + calls * p["secret_call"],
    )
    logs_gb = objects * LOG_BYTES_PER_OBJECT / 1e9
    e.add(
        "CloudWatch",
        f"{ALARMS} alarms x ${p['cw_alarm']} + {EMF_METRICS} metrics x ${p['cw_metric']} "
        f"+ {logs_gb:,.3f} GB logs x ${p['cw_logs_gb']}",
        ALARMS * p["cw_alarm"] + EMF_METRICS * p["cw_metric"] + logs_gb * p["cw_logs_gb"],
    )
    return e
