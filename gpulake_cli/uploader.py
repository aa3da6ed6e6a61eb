"""Uploading raw telemetry to the raw bucket the way the pipeline expects it.

Keys are ``<source>/<node>/<file name>`` (what ``terraform output upload_command``
documents); text is gzipped on the fly (ingest inflates it); ``node``, ``source`` and
``tz`` go along as object metadata; boto3's transfer manager switches to multipart
above 8 MiB. Each upload comes with the ``aws s3 cp`` command that does the same.
"""

from __future__ import annotations

import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from boto3.s3.transfer import TransferConfig

from gpulake.decode import GZIP_MAGIC
from gpulake.errors import ConfigError, InputRejected
from gpulake.formats import SNIFF_BYTES, detect

MULTIPART = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)


@dataclass(frozen=True)
class Upload:
    path: Path
    bucket: str
    key: str
    size: int
    metadata: dict[str, str]
    gzipped_here: bool

    def aws_cli(self) -> str:
        """The ``aws s3 cp`` command that uploads the same object."""
        meta = shlex.quote(",".join(f"{k}={v}" for k, v in sorted(self.metadata.items())))
        target = shlex.quote(f"s3://{self.bucket}/{self.key}")
        path = shlex.quote(str(self.path))
        if self.gzipped_here:
            return f"gzip -c {path} | aws s3 cp - {target} --metadata {meta}"
        return f"aws s3 cp {path} {target} --metadata {meta}"


class ByteProgress:
    """A bytes progress bar on a terminal (thread-safe: boto3 calls back from its workers)."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def __call__(self, amount: int) -> None:
        with self.lock:
            self.done += amount
            if self.stream.isatty():
                filled = int(30 * self.done / max(self.total, 1))
                self.stream.write(
                    f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done:,}/{self.total:,} B"
                )
                if self.done >= self.total:
                    self.stream.write("\n")
                self.stream.flush()


def default_bucket(root: Path) -> str | None:
    """``GPULAKE_RAW_BUCKET``, else the ``raw_bucket`` output of the deployed ``terraform/`` in this checkout.

    ``terraform output -json`` when Terraform is installed and the directory initialised (any backend),
    else a local ``terraform.tfstate``.
    """
    if os.environ.get("GPULAKE_RAW_BUCKET"):
        return os.environ["GPULAKE_RAW_BUCKET"]
    directory = root / "terraform"
    binary = shutil.which("terraform")
    if binary and (directory / ".terraform").is_dir():
        run = subprocess.run(
            [binary, f"-chdir={directory}", "output", "-json"], capture_output=True, text=True, timeout=60, check=False
        )
        if run.returncode == 0 and run.stdout.strip():
            return json.loads(run.stdout).get("raw_bucket", {}).get("value")
    state = directory / "terraform.tfstate"
    if state.is_file():
        return json.loads(state.read_text()).get("outputs", {}).get("raw_bucket", {}).get("value")
    return None


def plan(path: Path, bucket: str, node: str | None, source: str | None, tz: str | None) -> Upload:
    """Decide key and metadata for one file (reads its head to detect the source format)."""
    with path.open("rb") as handle:
        gzipped_here = handle.read(2) != GZIP_MAGIC
    if source is None:
        try:
            with path.open("rb") if gzipped_here else gzip.open(path) as handle:
                sample = handle.read(SNIFF_BYTES)  # the head only: a large .gz is not inflated whole
            source = detect(sample, str(path)).name
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: cannot read it ({exc}); is the gzip file complete?") from None
        except InputRejected as exc:
            raise ConfigError(f"{exc}; pass --source if it is telemetry") from None
    node = node or path.resolve().parent.name  # "x.csv" given from its folder: that folder, not ""
    metadata = {"node": node, "source": source} | ({"tz": tz} if tz else {})
    name = path.name + (".gz" if gzipped_here else "")
    return Upload(path, bucket, f"{source}/{node}/{name}", path.stat().st_size, metadata, gzipped_here)


def _gzip_into(path: Path, spool: IO[bytes]) -> None:
    with path.open("rb") as source, gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6, mtime=0) as packed:
        while chunk := source.read(1 << 20):
            packed.write(chunk)


def send(client: Any, upload: Upload, show_progress: bool = True) -> int:
    """Upload (gzipping on the fly when needed); returns the bytes stored."""
    with tempfile.TemporaryFile() if upload.gzipped_here else upload.path.open("rb") as body:
        if upload.gzipped_here:
            _gzip_into(upload.path, body)
        size = body.seek(0, 2)
        body.seek(0)
        extra = {"Metadata": upload.metadata}
        callback = ByteProgress(size, upload.path.name) if show_progress else None
        client.upload_fileobj(body, upload.bucket, upload.key, ExtraArgs=extra, Config=MULTIPART, Callback=callback)
    return size
