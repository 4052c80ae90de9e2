"""Reading the service's YAML data files (instruments, route rules, the directory of services)."""

from __future__ import annotations

from typing import Any

import yaml

# libyaml's parser (shipped in PyYAML's wheels) reads the shipped files about ten times faster than
# the pure-Python one: a tenth of a second of every worker's start-up. Both are the safe loader.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_yaml(text: str | bytes) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)
