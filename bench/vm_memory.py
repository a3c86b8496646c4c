"""Holds back a virtual machine's free page reporting while a benchmark runs.

On a VM whose virtio-balloon reports free pages to its host, memory freed by
one run (a deleted 1 GiB output file, say) is handed back to the host within
moments, and the next tool that writes a file then takes a host fault on
every new page: on the 2-vCPU VM these tables come from, a verified zc
receive into tmpfs went from 1.44 to 3.02 CPU-s/GiB, and whichever tool ran
after a pause (the hash row, say) paid it, so ratios swung with the order of
the tools. That kernel has `min_free_ms` (how long a page must stay free
before it is reported); raising it for the run puts every tool on the same
footing. The old value is restored at the end. Kernels without the knob are
left alone.
"""
import contextlib
import os

KNOB = "/sys/module/page_reporting/parameters/min_free_ms"
HELD_MS = 60000


@contextlib.contextmanager
def reporting_held(enabled=True):
    """Yields a line saying what was done (or None when nothing applies)."""
    old = None
    if enabled and os.path.exists(KNOB):
        try:
            with open(KNOB) as f:
                old = f.read().strip()
            if int(old) < HELD_MS:
                with open(KNOB, "w") as f:
                    f.write(str(HELD_MS))
            else:
                old = None
        except (OSError, ValueError):
            old = None
    note = None
    if old is not None:
        note = (f"free page reporting held back for the run ({KNOB} {old} -> {HELD_MS} ms; "
                "see bench/vm_memory.py)")
    elif enabled and os.path.exists(KNOB):
        note = f"free page reporting: {KNOB} left as it is"
    try:
        yield note
    finally:
        if old is not None:
            try:
                with open(KNOB, "w") as f:
                    f.write(old)
            except OSError:
                pass
