"""Make `theme_stand_ins` importable: pytest runs with --import-mode=importlib, which adds no
test folder to sys.path, and these tests share stand-in dataclasses for markup's types."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
