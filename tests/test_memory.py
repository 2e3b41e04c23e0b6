"""keep_freed_buffers: freed activation-sized buffers stay in the heap instead of faulting in again."""
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, torch
from selfocus_ext.workflow.memory import keep_freed_buffers

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        t = torch.empty(4 << 20)  # 16 MiB: above glibc's default mmap threshold
        t.fill_(1.0)
        del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

plain = faults()
ok = keep_freed_buffers()
faults()  # the first round after the change puts the buffer in the heap once
kept = faults()
print(plain, kept, ok, keep_freed_buffers())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc thresholds")
def test_freed_buffers_are_reused_without_page_faults():
    # glibc's default threshold adapts to the sizes it has seen, which makes the plain count depend on history;
    # pinning it at its initial 128 KiB makes the plain behaviour deterministic (every buffer mapped anew)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    plain, kept, ok, again = int(out[0]), int(out[1]), out[2], out[3]
    assert ok == "True" and again == "True"
    # returned to the system, each 16 MiB buffer faults its pages in again (hundreds of faults even with huge
    # pages); kept in the heap, the buffer is reused
    assert plain > 20 * 200
    assert kept < plain / 4
