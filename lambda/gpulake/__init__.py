"""gpulake's core: GPU telemetry objects in, the processed layout out (see ``docs/architecture.md``)."""

from gpulake._allocator import use_c_heap

use_c_heap()  # before any gpulake module imports pyarrow: Arrow and numpy share one heap
