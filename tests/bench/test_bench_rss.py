"""The benchmark's peak RSS is the measured process's own, not its parent's (Linux carries
``ru_maxrss`` across ``execve``, so a child of a large parent would report the parent's peak)."""

import subprocess
import sys

from bench.compare.harness import CpuSampler

CHILD = "import time; x = bytearray(80 << 20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.0)"


def test_peak_rss_is_the_childs_own():
    ballast = bytearray(400 << 20)
    ballast[::4096] = b"1" * len(ballast[::4096])  # the parent is now over 400 MB resident
    child = subprocess.Popen([sys.executable, "-c", CHILD])
    sampler = CpuSampler([child.pid], [], interval=0.05)
    sampler.start()
    child.wait(30)
    sampler.stop()
    peak_mb = sampler.peak_rss_kb[child.pid] / 1024
    assert 80 <= peak_mb < 200, peak_mb
    del ballast
