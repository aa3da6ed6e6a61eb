"""XID error classes: what an XID code means and what to do, after NVIDIA's Xid catalog.

Source: NVIDIA, "Analyzing Xid Errors with the Xid Catalog"
(https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html), whose resolution buckets
(RESTART_APP, RESET_GPU, RESTART_BM, CONTACT_SUPPORT ...) the actions below follow, and NVIDIA's
GPU memory error management guide (row remapping, contained/uncontained ECC errors). Codes not
listed are ``other`` warnings pointing at the catalog.
"""

from __future__ import annotations

from typing import NamedTuple


class XidClass(NamedTuple):
    group: str  # application | memory | nvlink | bus | gsp | engine | other
    severity: str
    summary: str
    action: str


XID_CLASSES: dict[int, XidClass] = {
    13: XidClass("application", "warning", "graphics engine exception", "check the job (illegal access); restart it"),
    31: XidClass("application", "warning", "GPU memory page fault", "check the job (bad address); restart it"),
    43: XidClass("application", "warning", "GPU stopped processing a channel", "restart the job"),
    45: XidClass("application", "info", "preemptive cleanup after an earlier error", "see the XID before it"),
    46: XidClass("engine", "critical", "GPU stopped processing", "drain the node and reset the GPU"),
    48: XidClass("memory", "critical", "double-bit ECC error", "drain and reset the GPU; RMA if it recurs"),
    61: XidClass("engine", "critical", "internal micro-controller breakpoint", "reset the GPU"),
    62: XidClass("engine", "critical", "internal micro-controller halt", "reset the GPU"),
    63: XidClass("memory", "critical", "row remapping pending (ECC)", "reset the GPU to apply the remapping"),
    64: XidClass("memory", "critical", "row remapping failed", "drain the node; contact support (RMA)"),
    74: XidClass("nvlink", "critical", "NVLink error", "reset the GPU; check NVLink/NVSwitch health"),
    79: XidClass(
        "bus", "critical", "GPU has fallen off the bus", "drain and reboot the node; check PCIe, power, cooling"
    ),
    92: XidClass("memory", "critical", "high single-bit ECC error rate", "drain and reset the GPU; RMA if it recurs"),
    94: XidClass("memory", "critical", "contained ECC error", "restart the affected job; reset the GPU when drained"),
    95: XidClass("memory", "critical", "uncontained ECC error", "drain the node and reset the GPU"),
    119: XidClass("gsp", "critical", "GSP RPC timeout", "reset the GPU; update the driver if it recurs"),
    120: XidClass("gsp", "critical", "GSP error", "reset the GPU; update the driver if it recurs"),
}


def classify(code: int) -> XidClass:
    """The class of an XID code (``other`` warning for codes not listed)."""
    return XID_CLASSES.get(code, XidClass("other", "warning", f"XID {code}", "look it up in NVIDIA's Xid catalog"))
