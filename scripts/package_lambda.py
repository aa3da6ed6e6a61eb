#!/usr/bin/env python3
"""Build the ingest Lambda's deployment zip and check it against AWS's 250 MB limit.

The zip holds ``gpulake`` (and the small ``tzdata`` package). pyarrow and numpy
come from the managed AWS SDK for pandas layer, aws-lambda-powertools from the
managed Powertools layer; their unzipped size is measured from this machine's
installed copies of the same packages (the layers' own size is close to that).
pandas is in that layer too but never imported on the ingest path.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
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


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed here; run `make install` first")
    return Path(next(iter(spec.submodule_search_locations)))


def build(out: Path) -> tuple[Path, int]:
    """Write the zip deterministically (sorted entries, fixed timestamps); return it and its unzipped size."""
    out.parent.mkdir(parents=True, exist_ok=True)
    code = ROOT / "lambda" / "gpulake"
    # the code and its data files (the default threshold rules)
    sources = [(p, p.relative_to(ROOT / "lambda")) for p in sorted([*code.rglob("*.py"), *code.rglob("*.jsonl")])]
    for name in BUNDLED:
        base = _package_dir(name)
        sources += [
            (p, Path(name) / p.relative_to(base))
            for p in sorted(base.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
        ]
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
