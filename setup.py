"""Build hook for the optional compiled modules; everything else is in pyproject.toml.

Every C file in ``lambda/gpulake/formats/`` is one such module (CPython limited API, one ``abi3``
build per platform for Python >= 3.11): ``_expo_scan_c`` (the dcgm scanner, twin of
``_expo_scan``) and ``_number_cells_c`` (the table cells' fast path, beside ``_values.to_numbers_python``).
They are built when a C compiler is present; without one the build is skipped (``optional=True``)
and gpulake runs their pure-Python twins. In a checkout: ``python setup.py build_ext --inplace``
(``make scanner``).
"""

from pathlib import Path

from setuptools import Extension, setup

COMPILED_DIR = Path("lambda/gpulake/formats")

setup(
    ext_modules=[
        Extension(
            f"gpulake.formats.{source.stem}",
            [source.as_posix()],
            py_limited_api=True,
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
        for source in sorted(COMPILED_DIR.glob("*.c"))
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
