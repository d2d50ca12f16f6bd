"""`python -m rewardkit_recsys run --config configs/recsys/ml100k.yaml`."""

import sys

from rewardkit_recsys.pipeline import main

sys.exit(main())
