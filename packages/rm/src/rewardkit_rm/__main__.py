from rewardkit_rm.cli import main

raise SystemExit(main())
