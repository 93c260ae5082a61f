"""Where the rows were measured, for the reports."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def resource() -> str:
    """Where the rows were measured: CPU model, cores, torch's thread count."""
    import torch  # the runner already runs both frameworks; this only reads a setting
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} threads"
