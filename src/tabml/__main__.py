from tabml.cli import main

raise SystemExit(main())
