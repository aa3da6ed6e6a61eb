#!/usr/bin/env python3
"""Build the Lambda deployment zips and our own dependency layers, and check them against AWS's 250 MB limit.

Code zips: ``build/gpulake-ingest.zip`` (``gpulake``) and ``build/gpulake-loader.zip``
(``gpulake`` and ``loaders``). Layers (``--layers``): ``build/layers/gpulake-ingest-layer.zip``
(pyarrow, numpy, tzdata, Powertools) and ``build/layers/gpulake-loader-layer.zip`` (the same plus
psycopg with its binary and influxdb-client), installed from the pinned wheels below for
Python 3.12 on arm64 (``pip download --platform … --only-binary=:all:``; wheels cached under
``build/wheels/``), trimmed of what the code never imports (pyarrow Flight, Gandiva, Substrait,
tests, headers, type stubs, Cython sources) and zipped reproducibly (sorted entries, fixed
timestamps and modes: a rebuild has the same hash, so ``terraform plan`` shows no change).
Powertools is bundled rather than taken from its managed layer: one pinned set of versions, and no
layer ARN or number that differs by region. pandas is in neither layer.

The compiled modules (the dcgm scanner, the table cells' fast path) go into the code zips
cross-built for the functions' arm64 runtime (:func:`aarch64_modules`); without a cross compiler
they carry only the pure-Python twins, which the code falls back to.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LIMIT_MB = 250.0
HANDLER = "gpulake/handlers/ingest.py"
LOADER_HANDLER = "loaders/handler.py"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)

#: every distribution of each layer, pinned (a lock: installed with --no-deps)
INGEST_PINS = (
    "pyarrow==26.0.1",
    "numpy==2.4.6",
    "tzdata==2026.6",
    "aws-lambda-powertools==3.37.0",
    "jmespath==1.1.0",
    "typing-extensions==4.16.0",
)
LOADER_PINS = (
    *INGEST_PINS,
    "psycopg==3.3.9",
    "psycopg-binary==3.3.9",
    "influxdb-client==1.50.0",
    "reactivex==6.1.1",
    "certifi==2026.10.19.post1",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==2.8.0",
)
LAYERS = {"ingest": INGEST_PINS, "loader": LOADER_PINS}
CODE = {"ingest": ("gpulake",), "loader": ("gpulake", "loaders")}
#: The compiled modules (every C file there, as setup.py builds them), cross-built for the Lambda's
#: arm64 runtime (limited API: one abi3 build each).
COMPILED_SOURCES = tuple(sorted((ROOT / "lambda" / "gpulake" / "formats").glob("*.c")))
COMPILED_ARCNAMES = tuple(f"gpulake/formats/{source.stem}.abi3.so" for source in COMPILED_SOURCES)
AARCH64_CC = "aarch64-linux-gnu-gcc"

#: what is dropped from the installed layer (fnmatch on paths relative to python/)
TRIM = (
    "bin/*",
    "*/__pycache__/*",
    "*/tests/*",
    "*.pyi",
    "*.pyx",
    "*.pxd",
    "*.pxi",
    "*.h",
    "*.hpp",
    "*.cc",
    "*.cpp",
    "pyarrow/include/*",
    "pyarrow/src/*",
    "pyarrow/lib/cmake/*",
    "pyarrow/lib/pkgconfig/*",
    "*flight*",
    "pyarrow/_s3fs*",  # pyarrow.fs imports it only if present; S3 goes through boto3 here
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_pyarrow_cpp_tests*",
    # the dynamic loader needs only the SONAME copy (libarrow*.so.<major>): wheels hold no symlinks
    "pyarrow/libarrow*.so",
    "pyarrow/libparquet*.so",
    "pyarrow/libarrow*.so.*.*.*",
    "pyarrow/libparquet*.so.*.*.*",
    "*gandiva*",
    # Substrait's Python module only: libarrow_python links libarrow_substrait.so (a test loads the layer)
    "pyarrow/_substrait*",
    "pyarrow/substrait.py",
    "numpy/_core/include/*",
    "numpy/_core/lib/*",
    "numpy/f2py/*",
)


@dataclass(frozen=True)
class Platform:
    """A wheel platform: Lambda's (arm64, Python 3.12) or this machine's, for tests."""

    tags: tuple[str, ...]
    python: str

    @property
    def name(self) -> str:
        return f"{self.tags[0].split('_', 1)[1]}-py{self.python}"


#: Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels load there
LAMBDA = Platform(("manylinux2014_aarch64", "manylinux_2_28_aarch64"), "3.12")


def this_machine() -> Platform:
    """This machine's platform and Python (the layers a test can import here)."""
    import platform

    arch = platform.machine()
    return Platform((f"manylinux2014_{arch}", f"manylinux_2_28_{arch}"), f"{sys.version_info[0]}.{sys.version_info[1]}")


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, stdout=subprocess.DEVNULL)


def _platform_args(platform: Platform) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", platform.python, "--implementation", "cp", "--no-deps"]
    for tag in platform.tags:
        args += ["--platform", tag]
    return args


def wheels(pins: tuple[str, ...], platform: Platform) -> Path:
    """The pinned wheels for ``platform``, downloaded once into ``build/wheels/<platform>/``."""
    folder = BUILD / "wheels" / platform.name
    folder.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("-")[0].lower() + "==" + p.name.split("-")[1] for p in folder.glob("*.whl")}
    missing = [p for p in pins if p.replace("-", "_").lower() not in have]
    if missing:
        _pip("download", "--quiet", "--dest", str(folder), *_platform_args(platform), *missing)
    return folder


def _trimmed(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, pattern) for pattern in TRIM)


def install(name: str, platform: Platform) -> Path:
    """``build/layers/<platform>/<name>/python``: the layer's pinned wheels installed and trimmed."""
    pins = LAYERS[name]
    folder = wheels(pins, platform)
    root = BUILD / "layers" / platform.name / name
    shutil.rmtree(root, ignore_errors=True)
    target = root / "python"
    _pip(
        "install", "--quiet", "--no-index", "--find-links", str(folder), "--target", str(target),
        "--no-compile", *_platform_args(platform), *pins,
    )  # fmt: skip
    for path in sorted(target.rglob("*"), reverse=True):
        relative = path.relative_to(target).as_posix()
        if path.is_file() and _trimmed(relative):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return root


def write_zip(out: Path, files: list[tuple[Path, str]]) -> tuple[Path, int]:
    """A reproducible zip: entries sorted by name, fixed timestamp and mode; returns it and its unzipped size."""
    out.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, arcname in sorted(files, key=lambda f: f[1]):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.create_system = 3
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    return out, unzipped


def _files(base: Path, below: Path) -> list[tuple[Path, str]]:
    return [
        (p, p.relative_to(base).as_posix())
        for p in sorted(below.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]


def build_layer(name: str, platform: Platform = LAMBDA, out: Path | None = None) -> tuple[Path, int]:
    """Install, trim and zip one layer; returns the zip and its unzipped size."""
    root = install(name, platform)
    out = out or BUILD / "layers" / (
        f"gpulake-{name}-layer.zip" if platform == LAMBDA else f"{platform.name}-{name}.zip"
    )
    return write_zip(out, _files(root, root / "python"))


def build(out: Path, kind: str = "ingest") -> tuple[Path, int]:
    """The function's code zip (``gpulake``, plus ``loaders`` for the loader)."""
    files = []
    compiled = aarch64_modules()
    for package in CODE[kind]:
        base = ROOT / "lambda" if package == "gpulake" else ROOT
        # the code and its data files (the default threshold rules)
        files += [
            (p, p.relative_to(base).as_posix())
            for p in sorted((base / package).rglob("*"))
            if p.suffix in (".py", ".jsonl") and "__pycache__" not in p.parts
        ]
        if package == "gpulake":
            files += compiled
    return write_zip(out, files)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _installed_size(names: tuple[str, ...]) -> int:
    total = 0
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed here; run `make install` first")
        total += _tree_size(Path(next(iter(spec.submodule_search_locations))))
    return total


def aarch64_modules(build_dir: Path = BUILD / "aarch64") -> list[tuple[Path, str]]:
    """Cross-compile the compiled modules for arm64 Lambda: ``[(built .so, name in the zip)]``, or ``[]`` with a note.

    The limited API (``Py_LIMITED_API`` in the sources) makes the headers of this machine's
    Python fit any CPython >= 3.11 on a 64-bit little-endian Linux, arm64 included.
    """
    compiler = shutil.which(AARCH64_CC)
    if compiler is None:
        print(f"note: no {AARCH64_CC} (Debian: gcc-aarch64-linux-gnu): the zip uses the pure-Python twins")
        return []
    include = sysconfig.get_paths()["include"]
    built = []
    for source, arcname in zip(COMPILED_SOURCES, COMPILED_ARCNAMES, strict=True):
        target = build_dir / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [compiler, "-O2", "-std=c11", "-fPIC", "-shared", "-s", f"-I{include}", str(source)]
        subprocess.run([*command, "-o", str(target)], check=True)
        built.append((target, arcname))
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD / "gpulake-ingest.zip", help="ingest code zip")
    parser.add_argument("--loader-out", type=Path, default=BUILD / "gpulake-loader.zip", help="loader code zip")
    parser.add_argument("--layers", action="store_true", help="also build both dependency layers (arm64, Python 3.12)")
    args = parser.parse_args(argv)
    ok = True
    for kind, out, handler in (("ingest", args.out, HANDLER), ("loader", args.loader_out, LOADER_HANDLER)):
        zip_path, code = build(out, kind)
        with zipfile.ZipFile(zip_path) as archive:
            if handler not in archive.namelist():
                raise SystemExit(f"{zip_path} lacks {handler}")
        print(
            f"{kind} code: {zip_path} ({zip_path.stat().st_size / 1e6:.2f} MB zipped, {code / 2**20:.2f} MiB unzipped)"
        )
        if args.layers:
            layer_zip, deps = build_layer(kind)
            zipped = layer_zip.stat().st_size / 1e6
            print(f"{kind} layer: {layer_zip} ({zipped:.1f} MB zipped, {deps / 2**20:.1f} MiB unzipped)")
        else:
            names = ("pyarrow", "numpy", "aws_lambda_powertools") + (
                ("psycopg", "influxdb_client") if kind == "loader" else ()
            )
            deps = _installed_size(names)
            print(f"  {deps / 2**20:.1f} MiB of dependencies as installed here (build the real layer with --layers)")
        total = (code + deps) / 2**20
        verdict = "fits" if total <= LIMIT_MB else "exceeds"
        ok &= verdict == "fits"
        print(f"  {total:8.1f} MiB  {kind} function + layer: {verdict} the {LIMIT_MB:.0f} MB limit")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
