from itersolve.bench.cli import main

raise SystemExit(main())
