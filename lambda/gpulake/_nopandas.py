"""Keep pyarrow from importing pandas where nothing uses it (the ingest path).

pyarrow imports pandas, when it is installed, on its first ``pa.array()`` of a list or a numpy
array just to ask whether it is a pandas object (a categorical): ~0.3-0.5 s. The Lambda layers
we build carry no pandas, but the CLI's ``[cli]`` extra installs it, so
``gpulake.local.process_file`` calls this. If that first import fails, pyarrow
records pandas as absent for those optional checks; code that really needs pandas
(``to_pandas``) still imports it, because pyarrow retries then.
"""

from __future__ import annotations

import functools
import sys


class _NoPandas:
    """Import hook under which ``import pandas`` fails."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not used on the ingest path", name=name)


@functools.cache  # once per interpreter
def pyarrow_without_pandas() -> None:
    """Make pyarrow's first pandas check, now, find no pandas (no-op once pandas is imported)."""
    if "pandas" in sys.modules:
        return
    hook = _NoPandas()
    sys.meta_path.insert(0, hook)
    try:
        import pyarrow as pa

        pa.array([0])
    finally:
        sys.meta_path.remove(hook)
