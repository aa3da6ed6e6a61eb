"""Build hook for the optional compiled scanner; everything else is in pyproject.toml.

``gpulake.formats._expo_scan_c`` (CPython limited API, one ``abi3`` build per platform for
Python >= 3.11) is built when a C compiler is present; without one the build is skipped
(``optional=True``) and gpulake runs its pure-Python twin, ``gpulake.formats._expo_scan``.
In a checkout: ``python setup.py build_ext --inplace`` (``make scanner``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"gpulake.formats.{name}",
            [f"lambda/gpulake/formats/{name}.c"],
            py_limited_api=True,
            extra_compile_args=["-O2", "-std=c11"],
            optional=True,
        )
        for name in ("_expo_scan_c", "_number_cells_c")
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
