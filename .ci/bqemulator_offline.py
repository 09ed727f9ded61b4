"""Start bqemulator (a local BigQuery stand-in) without network access.

bqemulator 1.4.0 runs `INSTALL spatial; LOAD spatial` at start and aborts when DuckDB's extension
repository cannot be reached. mdp uses no GEOGRAPHY function, so the loader is skipped here; the
rest of the emulator is unchanged. Usage: python bqemulator_offline.py start --rest-port N ...
"""
import sys

import bqemulator.storage.engine as engine

engine.DuckDBEngine._load_spatial = lambda self: None

from bqemulator.cli import main  # noqa: E402  (after the patch above)

sys.exit(main())
