from taskyard.cli.main import main

raise SystemExit(main())
