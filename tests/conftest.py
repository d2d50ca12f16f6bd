"""Suite-wide settings: one torch thread per test process.

`pytest -n 2` on a 2-core machine runs two processes; each using two threads would
oversubscribe the cores (measured here: up to 15x slower). Subprocesses the tests launch
inherit OMP_NUM_THREADS.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
