"""Uploads into a local S3 endpoint (moto's server): `upload` and the real `aws s3 cp`, then the real handler."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpulake_cli.local_aws import IngestRunner, LocalAws, Stack
from tests.cli.helpers import ROOT, run
from tests.conftest import real_file

AWS = ROOT / ".venv-awscli" / "bin" / "aws"
SAMPLES = ROOT / "gpulake_cli" / "samples"


@pytest.fixture
def local_aws() -> Iterator[tuple[LocalAws, Stack]]:
    aws = LocalAws().start()
    try:
        yield aws, aws.create_stack()
    finally:
        aws.stop()


def _processed_keys(aws: LocalAws, stack: Stack) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=stack.processed_bucket).get("Contents", [])
    return sorted(item["Key"] for item in listing)


def test_upload_command_gzips_sets_metadata_and_ingests(local_aws: tuple[LocalAws, Stack]) -> None:
    aws, stack = local_aws
    sample = SAMPLES / "nvidia-smi" / "rig-7" / "query-gpu.csv"
    result = run("upload", str(sample), "--bucket", stack.raw_bucket, "--tz", "Europe/Berlin", "--json", env=aws.env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    key = "nvidia-smi/rig-7/query-gpu.csv.gz"
    assert record["s3"] == f"s3://{stack.raw_bucket}/{key}"
    assert record["aws_cli"].startswith(f"gzip -c {sample} | aws s3 cp - s3://{stack.raw_bucket}/{key}")
    head = aws.client("s3").get_object(Bucket=stack.raw_bucket, Key=key)
    assert head["Metadata"] == {"node": "rig-7", "source": "nvidia-smi", "tz": "Europe/Berlin"}
    assert gzip.decompress(head["Body"].read()) == sample.read_bytes()
    assert IngestRunner(aws, stack).drain() == 2  # the object + the s3:TestEvent
    assert any(k.startswith("metrics/source=nvidia-smi/") for k in _processed_keys(aws, stack))


def test_large_files_go_multipart(local_aws: tuple[LocalAws, Stack], tmp_path: Path) -> None:
    aws, stack = local_aws
    big = tmp_path / "big.prom.gz"
    big.write_bytes(gzip.compress(os.urandom(9 << 20), 0))
    result = run("upload", str(big), "--bucket", stack.raw_bucket, "--node", "n1", "--source", "dcgm", env=aws.env)
    assert result.returncode == 0, result.stderr
    etag = aws.client("s3").head_object(Bucket=stack.raw_bucket, Key="dcgm/n1/big.prom.gz")["ETag"]
    assert etag.strip('"').endswith("-2"), etag


def test_real_aws_cli_upload_is_processed_like_any_other(local_aws: tuple[LocalAws, Stack]) -> None:
    aws, stack = local_aws
    assert AWS.exists(), f"{AWS} missing: `make install` creates the awscli virtualenv"
    scrape = real_file("dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom")
    target = f"s3://{stack.raw_bucket}/dcgm/dgx-07/scrape.prom"
    cli = subprocess.run(
        [str(AWS), "s3", "cp", str(scrape), target, "--endpoint-url", aws.endpoint, "--metadata", "node=dgx-07"],
        capture_output=True, text=True, env=os.environ | aws.env, timeout=120, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "upload:" in cli.stdout
    IngestRunner(aws, stack).drain()
    keys = _processed_keys(aws, stack)
    assert [k for k in keys if k.startswith("metrics/source=dcgm/")], keys
    assert not [k for k in keys if k.startswith("quarantine/")], keys


def test_bucket_defaults_to_env_then_terraform_state(local_aws: tuple[LocalAws, Stack], tmp_path: Path) -> None:
    from gpulake_cli import uploader

    aws, stack = local_aws
    sample = SAMPLES / "thermal-csv" / "lab" / "thermal-2026-11-02.csv"
    result = run("upload", str(sample), "--json", env=aws.env | {"GPULAKE_RAW_BUCKET": stack.raw_bucket})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["s3"] == f"s3://{stack.raw_bucket}/thermal-csv/lab/thermal-2026-11-02.csv.gz"
    (tmp_path / "terraform").mkdir()
    state = {"version": 4, "outputs": {"raw_bucket": {"value": "from-state", "type": "string"}}}
    (tmp_path / "terraform" / "terraform.tfstate").write_text(json.dumps(state))
    env_bucket = os.environ.pop("GPULAKE_RAW_BUCKET", None)
    try:
        assert uploader.default_bucket(tmp_path) == "from-state"
        assert uploader.default_bucket(tmp_path / "elsewhere") is None
    finally:
        if env_bucket is not None:
            os.environ["GPULAKE_RAW_BUCKET"] = env_bucket


def test_no_bucket_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    result = run("upload", str(SAMPLES), env={"GPULAKE_RAW_BUCKET": ""})
    assert result.returncode == 2 and "GPULAKE_RAW_BUCKET" in result.stderr and "Traceback" not in result.stderr


def test_a_large_gzip_file_is_detected_from_its_head(tmp_path: Path) -> None:
    from gpulake_cli import uploader

    scrape = real_file("dcgm/NVIDIA__aicr__evidence_accelerator-metrics_md__H100x8_4.x_filtered.prom").read_bytes()
    path = tmp_path / "dcgm-dump" / "scrapes.prom.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(scrape * 200))  # far more than the sniffed head once inflated
    upload = uploader.plan(path, "raw", None, None, None)
    assert (upload.key, upload.gzipped_here) == ("dcgm/dcgm-dump/scrapes.prom.gz", False)


def test_byte_progress_bar_on_a_terminal() -> None:
    import io

    from gpulake_cli import uploader

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = uploader.ByteProgress(1000, "scrape.prom", stream)
    for chunk in (250, 250, 500):  # boto3 calls back from its worker threads with each part's bytes
        bar(chunk)
    frames = stream.getvalue().split("\r")[1:]
    assert frames[0].startswith("scrape.prom [#######.......................] 250/1,000 B")
    assert frames[-1] == "scrape.prom [" + "#" * 30 + "] 1,000/1,000 B\n"
