from batchscribe.cli import main

raise SystemExit(main())
