from nbboard.cli import main

raise SystemExit(main())
