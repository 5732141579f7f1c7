from garagelab.cli import main

raise SystemExit(main())
