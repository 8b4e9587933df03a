"""``python -m benchmarks.nab``: run the metric monitor on NAB data and score it."""

from __future__ import annotations

import sys

from benchmarks.nab.run import main

sys.exit(main())
