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

A benchmark does not change a kernel setting unless asked: the scripts take
`--hold-page-reporting` (bench/run.sh, bench.py, ab.py, trees.py) and print
the note this module makes in their table's header when they do. To hold it
around another command (the shared yardstick, say):

  python3 bench/vm_memory.py -- COMMAND [ARGS...]
"""
import contextlib
import os
import subprocess
import sys

KNOB = "/sys/module/page_reporting/parameters/min_free_ms"
HELD_MS = 60000


@contextlib.contextmanager
def reporting_held(enabled=False):
    """Yields a line saying what was done (or None when nothing was asked
    or nothing applies). Changes nothing unless `enabled`."""
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


def main(argv):
    """Runs a command with the reporting held (needs root to write the knob)."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit("usage: vm_memory.py -- COMMAND [ARGS...]")
    with reporting_held(True) as note:
        if note:
            print(note, file=sys.stderr)
        return subprocess.call(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
