from rewardkit_code.cli import main

raise SystemExit(main())
