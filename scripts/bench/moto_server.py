"""moto_server for the benchmark, with Python's cyclic garbage collector off.

moto keeps a large heap (botocore's service models), and a full collection
of it pauses the server for 50-220 ms (measured with gc.callbacks during
scripts/bench.sh). One such pause landing in a timed run added ~130 ms to it,
always at the same run, since the workload is the same each time. Real AWS
has no such pauses, and the benchmark times hpa-tier, not moto, so the
collector is off; reference counting still frees almost everything, and the
process lives only as long as the benchmark.

Usage: python moto_server.py -H 127.0.0.1 -p PORT (moto_server's options).
"""

import gc
import sys

from moto.server import main

if __name__ == "__main__":
    gc.disable()
    sys.exit(main())
