import sys

from rewardkit_translation.cli import main

sys.exit(main())
