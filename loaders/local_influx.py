"""Real servers the tests start and stop themselves: InfluxDB 1.x (``influxd``) on free ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import urllib3

from loaders.local_postgres import free_port

INFLUXD_CONFIG = """
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{base}/meta"
[data]
  dir = "{base}/data"
  wal-dir = "{base}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[monitor]
  store-enabled = false
"""


class LocalInflux:
    """``influxd`` with a temporary config, data directory and free ports."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="gpulake-influx-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalInflux:
        binary = shutil.which("influxd")
        if not binary:
            raise RuntimeError("influxd not found: `make install` installs Debian's influxdb package")
        config = self.base / "influxdb.conf"
        config.write_text(INFLUXD_CONFIG.format(base=self.base, rpc=free_port(), http=self.port))
        log = (self.base / "log").open("wb")
        self.process = subprocess.Popen([binary, "-config", str(config)], stdout=log, stderr=log)
        http = urllib3.PoolManager()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http.request("GET", f"{self.url}/ping", timeout=1, retries=False).status == 204:
                    return self
            except urllib3.exceptions.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"influxd did not answer on {self.url}")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        shutil.rmtree(self.base, ignore_errors=True)
