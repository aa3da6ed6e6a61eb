#!/usr/bin/env python3
"""Build the ingest Lambda's deployment zip and check it against AWS's 250 MB limit.

The zip holds ``gpulake`` (and the small ``tzdata`` package). pyarrow and numpy
come from the managed AWS SDK for pandas layer, aws-lambda-powertools from the
managed Powertools layer; their unzipped size is measured from this machine's
installed copies of the same packages (the layers' own size is close to that).
pandas is in that layer too but never imported on the ingest path.

The compiled dcgm scanner goes in cross-built for the function's arm64 runtime
(:func:`aarch64_scanner`); without a cross compiler the zip carries only the
pure-Python scanner, which the code falls back to.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 250.0
HANDLER = "gpulake/handlers/ingest.py"
#: package -> the layer that provides it in production
LAYERS = {
    "pyarrow": "AWS SDK for pandas (managed)",
    "numpy": "AWS SDK for pandas (managed)",
    "pandas": "AWS SDK for pandas (managed)",
    "aws_lambda_powertools": "Powertools for AWS Lambda v3 (managed)",
}
BUNDLED = ("tzdata",)
#: The compiled exposition scanner, cross-built for the Lambda's arm64 runtime (limited API: one abi3 build).
SCANNER_SOURCE = ROOT / "lambda" / "gpulake" / "formats" / "_expo_scan_c.c"
SCANNER_ARCNAME = Path("gpulake/formats/_expo_scan_c.abi3.so")
AARCH64_CC = "aarch64-linux-gnu-gcc"


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed here; run `make install` first")
    return Path(next(iter(spec.submodule_search_locations)))


def aarch64_scanner(build_dir: Path = ROOT / "build" / "aarch64") -> list[tuple[Path, Path]]:
    """Cross-compile ``_expo_scan_c`` for arm64 Lambda: ``[(built .so, name in the zip)]``, or ``[]`` with a note.

    The limited API (``Py_LIMITED_API`` in the source) makes the headers of this machine's
    Python fit any CPython >= 3.11 on a 64-bit little-endian Linux, arm64 included.
    """
    compiler = shutil.which(AARCH64_CC)
    if compiler is None:
        print(f"note: no {AARCH64_CC} (Debian: gcc-aarch64-linux-gnu): the zip uses the pure-Python dcgm scanner")
        return []
    target = build_dir / SCANNER_ARCNAME
    target.parent.mkdir(parents=True, exist_ok=True)
    include = sysconfig.get_paths()["include"]
    command = [compiler, "-O2", "-std=c11", "-fPIC", "-shared", "-s", f"-I{include}", str(SCANNER_SOURCE)]
    subprocess.run([*command, "-o", str(target)], check=True)
    return [(target, SCANNER_ARCNAME)]


def build(out: Path) -> tuple[Path, int]:
    """Write the zip deterministically (sorted entries, fixed timestamps); return it and its unzipped size."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [(p, p.relative_to(ROOT / "lambda")) for p in sorted((ROOT / "lambda" / "gpulake").rglob("*.py"))]
    for name in BUNDLED:
        base = _package_dir(name)
        sources += [
            (p, Path(name) / p.relative_to(base))
            for p in sorted(base.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        ]
    sources += aarch64_scanner()
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, arcname in sources:
            info = zipfile.ZipInfo(arcname.as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return out, unzipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpulake-ingest.zip")
    args = parser.parse_args(argv)
    zip_path, unzipped = build(args.out)
    with zipfile.ZipFile(zip_path) as archive:
        if HANDLER not in archive.namelist():
            raise SystemExit(f"{zip_path} lacks {HANDLER}")
    sizes = {name: _tree_size(_package_dir(name)) for name in LAYERS}
    print(f"zip: {zip_path} ({zip_path.stat().st_size / 1e6:.2f} MB zipped, {unzipped / 2**20:.1f} MiB unzipped)")
    scanner = ROOT / "build" / "aarch64" / SCANNER_ARCNAME
    if scanner.exists():
        print(f"  {scanner.stat().st_size / 2**10:8.1f} KiB  {SCANNER_ARCNAME} (compiled dcgm scanner, aarch64)")
    for name, layer in LAYERS.items():
        print(f"  {sizes[name] / 2**20:8.1f} MiB  {name} (in production: {layer})")
    plans = {
        "zip + powertools + pyarrow + numpy (the ingest path)": ("aws_lambda_powertools", "pyarrow", "numpy"),
        "zip + powertools + pyarrow + numpy + pandas": tuple(LAYERS),
    }
    ok = True
    for label, names in plans.items():
        total = (unzipped + sum(sizes[n] for n in names)) / 2**20
        verdict = "fits" if total <= LIMIT_MB else "exceeds"
        ok &= verdict == "fits" or "pandas" in label
        print(f"  {total:8.1f} MiB  {label}: {verdict} the {LIMIT_MB:.0f} MB limit")
    print("  production uses the managed AWS SDK for pandas layer (built by AWS to fit) for pyarrow/numpy")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
