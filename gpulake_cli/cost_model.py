"""Monthly AWS cost of running gpulake for a fleet, next to Amazon Managed Prometheus and CloudWatch metrics.

List prices are us-east-1 (sources in docs/cost.md). Data sizes were measured on
the fleet simulator's dcgm-exporter output (``RAW_BYTES_PER_SAMPLE`` per GPU and
scrape, gzip ratio, Parquet bytes per row); Lambda time per object is a fixed
S3/SQS overhead plus parsing at the benchmarked rate. Every line of the estimate
carries its arithmetic, so ``cost`` output can be checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MONTH_S = 730 * 3600  # AWS bills a month as 730 hours
GPUS_PER_NODE = 8
DCGM_FIELDS = 17  # metrics per GPU in a default dcgm-exporter scrape (simulator's counter list)
RAW_BYTES_PER_SAMPLE = 4100  # dcgm-exporter text per GPU per scrape (measured)
GZIP_RATIO = 27  # measured on the same text
PARQUET_BYTES_PER_SAMPLE = 18  # canonical rows, zstd (measured)
PARSE_MB_PER_S = 100  # conservative against scripts/bench_ingest.py (144 MB/s)
OVERHEAD_S = 0.3  # S3 GET + PUTs + SNS per object
LAMBDA_GB = 2.5  # terraform lambda_memory_mb default (2560 MB: a 1 GiB dcgm object fits, docs/deploy.md)
RAW_RETENTION_DAYS = 30
IA_AFTER_DAYS = 30
ALARMS = 7
EMF_METRICS = 6
LOG_BYTES_PER_OBJECT = 1000
SQS_POLLS = 5 * 3 * 730 * 60  # 5 Lambda pollers long-polling (20 s) all month
# Alert episodes (ADR 0005). Measured on a 6-hour simulated fleet that flaps (tests/e2e/test_episodes_moto.py):
# 14.76 PutItem per object at 4 GPUs per node = 1 node item + 3.44 per GPU (episodes, the carry item, group sends),
# and as many Query.
DDB_CALLS_PER_GPU = 3.44
DDB_WRU_PER_PUT = 2  # items are 1-2 KB (an episode keeps ~40 B per object it spans)
# Notification groups (gpulake.alerts.grouping): 0.33 per object on the same fleet change what a node is told; each
# reads the node's group (1 Query) and writes it with the episode in one TransactWriteItems: 2 items of ~2 KB at
# the transactional rate of 2 WRU per KB = 8 WRU.
GROUP_STAGES_PER_OBJECT = 0.33
WRU_PER_GROUP_STAGE = 8
EPISODE_ITEMS_PER_GPU = 32  # a few open plus ~30 closed kept by the 30-day TTL (assumed: one episode a day)
EPISODE_ITEM_KB = 2
SWEEPS = 12 * 730  # every 5 minutes
SWEEP_S, SWEEPER_GB = 0.5, 0.25

PRICES = {
    "lambda_gb_s_arm": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "s3_standard_gb": 0.023,
    "s3_ia_gb": 0.0125,
    "sqs_request": 0.40 / 1e6,
    "cw_alarm": 0.10,
    "cw_metric": 0.30,
    "cw_logs_gb": 0.50,
    "cw_put_metric_data": 0.01 / 1000,
    "kms_key": 1.00,
    "ddb_rru": 0.125 / 1e6,
    "ddb_wru": 0.625 / 1e6,
    "amp_samples": 0.90 / 10e6,
    "amp_storage_gb": 0.03,
}


def counted(n: float, noun: str) -> str:
    """``1 node``, ``3 nodes``: output people read aloud should not say "1 nodes"."""
    return f"{n:,g} {noun}" + ("" if n == 1 else "s")


@dataclass
class Estimate:
    lines: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, item: str, arithmetic: str, usd: float) -> float:
        self.lines.append((item, arithmetic, usd))
        return usd

    @property
    def total(self) -> float:
        return sum(usd for _, _, usd in self.lines)


@dataclass(frozen=True)
class Fleet:
    gpus: int
    interval_s: float
    upload_every_min: float
    gpus_per_node: int = GPUS_PER_NODE

    @property
    def nodes(self) -> int:
        """Each node's collector uploads one object per interval, so the node count sets the object count."""
        return math.ceil(self.gpus / self.gpus_per_node)

    @property
    def samples(self) -> float:
        """GPU-scrapes per month."""
        return self.gpus * MONTH_S / self.interval_s

    @property
    def objects(self) -> float:
        return self.nodes * MONTH_S / (self.upload_every_min * 60)


def gpulake(fleet: Fleet) -> Estimate:
    p, e = PRICES, Estimate()
    objects = fleet.objects
    raw_mb = fleet.samples * RAW_BYTES_PER_SAMPLE / objects / 1e6
    seconds = OVERHEAD_S + raw_mb / PARSE_MB_PER_S
    gb_s = objects * seconds * LAMBDA_GB
    e.add(
        "Lambda compute",
        f"{objects:,.0f} objects x {seconds:.3f} s x {LAMBDA_GB:g} GB = {gb_s:,.0f} GB-s x ${p['lambda_gb_s_arm']}",
        gb_s * p["lambda_gb_s_arm"],
    )
    e.add(
        "Lambda requests",
        f"{objects:,.0f} / 10 per batch x ${p['lambda_request'] * 1e6:.2f}/M",
        objects / 10 * p["lambda_request"],
    )
    e.add(
        "S3 PUT", f"{objects:,.0f} x 3 (raw, Parquet, alerts) x ${p['s3_put'] * 1000}/1,000", objects * 3 * p["s3_put"]
    )
    e.add("S3 GET", f"{objects:,.0f} x 2 (raw, alerts) x ${p['s3_get'] * 1000}/1,000", objects * 2 * p["s3_get"])
    sqs = objects * 3 + SQS_POLLS
    e.add(
        "SQS",
        f"{objects:,.0f} x 3 + {SQS_POLLS:,} polls = {sqs:,.0f} x ${p['sqs_request'] * 1e6:.2f}/M",
        sqs * p["sqs_request"],
    )
    raw_gb = fleet.samples * RAW_BYTES_PER_SAMPLE / GZIP_RATIO / 1e9
    held = raw_gb * RAW_RETENTION_DAYS / 30
    e.add(
        "S3 raw storage",
        f"{raw_gb:,.2f} GB/month gzip, kept {RAW_RETENTION_DAYS} d = {held:,.2f} GB x ${p['s3_standard_gb']}",
        held * p["s3_standard_gb"],
    )
    parquet_gb = fleet.samples * PARQUET_BYTES_PER_SAMPLE / 1e9
    ia_gb = parquet_gb * 11
    e.add(
        "S3 processed storage",
        f"after a year: {parquet_gb:,.2f} GB Standard x ${p['s3_standard_gb']} + {ia_gb:,.2f} GB IA x ${p['s3_ia_gb']}",
        parquet_gb * p["s3_standard_gb"] + ia_gb * p["s3_ia_gb"],
    )
    logs_gb = objects * LOG_BYTES_PER_OBJECT / 1e9
    cw = ALARMS * p["cw_alarm"] + EMF_METRICS * p["cw_metric"] + logs_gb * p["cw_logs_gb"]
    e.add(
        "CloudWatch",
        f"{ALARMS} alarms x ${p['cw_alarm']} + {EMF_METRICS} metrics x ${p['cw_metric']} "
        f"+ {logs_gb:,.3f} GB logs x ${p['cw_logs_gb']}",
        cw,
    )
    e.add("KMS key (alerts topic)", f"1 x ${p['kms_key']}", p["kms_key"])
    _episodes(fleet, e)
    return e


def _episodes(fleet: Fleet, e: Estimate) -> None:
    """The episodes table (on-demand) and the sweeper, per month and per GPU-month."""
    p = PRICES
    per_node = min(fleet.gpus, GPUS_PER_NODE)
    calls = fleet.objects * (1 + DDB_CALLS_PER_GPU * per_node)
    stages = fleet.objects * GROUP_STAGES_PER_OBJECT
    # the sweeper's Scan is eventually consistent: 1 RRU per 8 KB
    scan_rru = SWEEPS * math.ceil(fleet.gpus * EPISODE_ITEMS_PER_GPU * EPISODE_ITEM_KB / 8)
    wru = calls * DDB_WRU_PER_PUT + stages * WRU_PER_GROUP_STAGE
    usd = (calls + stages + scan_rru) * p["ddb_rru"] + wru * p["ddb_wru"]
    e.add(
        "DynamoDB episodes",
        f"{calls + stages:,.0f} queries + {scan_rru:,} sweep RRU x ${p['ddb_rru'] * 1e6:.3f}/M + {calls:,.0f} puts x "
        f"{DDB_WRU_PER_PUT} WRU + {stages:,.0f} group transactions x {WRU_PER_GROUP_STAGE} WRU x "
        f"${p['ddb_wru'] * 1e6:.3f}/M (${usd / fleet.gpus:.4f} per GPU-month)",
        usd,
    )
    gb_s = SWEEPS * SWEEP_S * SWEEPER_GB
    usd = gb_s * p["lambda_gb_s_arm"] + SWEEPS * p["lambda_request"]
    e.add(
        "Sweeper Lambda",
        f"{SWEEPS:,} runs x {SWEEP_S:g} s x {SWEEPER_GB:g} GB = {gb_s:,.0f} GB-s + {SWEEPS:,} requests "
        f"(${usd / fleet.gpus:.4f} per GPU-month)",
        usd,
    )


def managed_prometheus(fleet: Fleet) -> Estimate:
    p, e = PRICES, Estimate()
    samples = fleet.samples * DCGM_FIELDS
    e.add(
        "AMP ingestion",
        f"{fleet.samples:,.0f} scrapes x {DCGM_FIELDS} series = {samples:,.0f} samples "
        f"x ${p['amp_samples'] * 1e7:.2f}/10M",
        samples * p["amp_samples"],
    )
    stored_gb = samples * 2 / 1e9 * 12
    e.add(
        "AMP storage",
        f"{samples:,.0f} samples x 2 B x 12 months = {stored_gb:,.2f} GB x ${p['amp_storage_gb']}",
        stored_gb * p["amp_storage_gb"],
    )
    return e


def cloudwatch_metrics(fleet: Fleet) -> Estimate:
    p, e = PRICES, Estimate()
    metrics = fleet.gpus * DCGM_FIELDS
    e.add(
        "custom metrics",
        f"{counted(fleet.gpus, 'GPU')} x {DCGM_FIELDS} metrics = {metrics:,} x ${p['cw_metric']}",
        metrics * p["cw_metric"],
    )
    requests = fleet.nodes * MONTH_S / fleet.interval_s
    e.add(
        "PutMetricData",
        f"{counted(fleet.nodes, 'node')} x one call per scrape = {requests:,.0f} "
        f"x ${p['cw_put_metric_data'] * 1000}/1,000",
        requests * p["cw_put_metric_data"],
    )
    return e


TITLES = {
    "gpulake": "gpulake",
    "loader": "gpulake event-driven loader (optional, beside ingest)",
    "managed_prometheus": "Amazon Managed Prometheus",
    "cloudwatch_metrics": "CloudWatch custom metrics",
}


def estimates(fleet: Fleet) -> dict[str, Estimate]:
    """gpulake (ingest, and the optional loader) and its two peers for the same fleet, keyed as in ``TITLES``."""
    from gpulake_cli.cost_loader import loader

    return {
        "gpulake": gpulake(fleet),
        "loader": loader(fleet),
        "managed_prometheus": managed_prometheus(fleet),
        "cloudwatch_metrics": cloudwatch_metrics(fleet),
    }


def render(fleet: Fleet) -> str:
    out = [
        f"fleet: {counted(fleet.gpus, 'GPU')} on {counted(fleet.nodes, 'node')} "
        f"({counted(fleet.gpus_per_node, 'GPU')} per node), scraped every {fleet.interval_s:g} s, "
        f"uploaded every {fleet.upload_every_min:g} min "
        f"({fleet.samples:,.0f} GPU-scrapes, {fleet.objects:,.0f} objects a month)"
    ]
    for key, estimate in estimates(fleet).items():
        out.append(f"\n{TITLES[key]}: ${estimate.total:,.2f}/month")
        out += [f"  {item:<24} {usd:>10,.2f}  {arith}" for item, arith, usd in estimate.lines]
    return "\n".join(out)
