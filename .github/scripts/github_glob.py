"""GitHub's glob for workflow path filters, shared by the scripts that decide what a
change touches (what_changed.py, release_info.py) and the tests that read the filters.

`**` crosses folders, `*` and `?` do not; every other character stands for itself.
"""

from __future__ import annotations

import re
from functools import cache


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)
