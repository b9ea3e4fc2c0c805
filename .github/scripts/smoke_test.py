"""Smoke-test a running prediction server: it gets ready, and answers one prediction.

Usage: python3 smoke_test.py BASE_URL METADATA [TIMEOUT_SECONDS]

The row is built from the feature schema in metadata.json (the middle of each numeric
range, or its one bound; the first allowed category), and the answer must name one of
the target classes.
Only the standard library: it runs on the runner, outside the project environment.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def example_row(features: list[dict]) -> dict:
    row: dict = {}
    for feature in features:
        if feature["dtype"] == "category":
            row[feature["name"]] = feature["allowed"][0]
        else:
            low, high = feature.get("min"), feature.get("max")
            if low is not None and high is not None:
                value = (low + high) / 2
            else:  # the one bound given, if any: the server refuses values past it
                value = next((bound for bound in (low, high) if bound is not None), 0.0)
            row[feature["name"]] = round(value) if feature["dtype"] == "int" else value
    return row


def wait_ready(base: str, timeout: float) -> None:
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
                last = f"HTTP {reply.status}"
        except (urllib.error.URLError, OSError) as error:
            last = repr(error)
        time.sleep(0.5)
    raise SystemExit(
        f"::error::{base}/ready did not answer 200 within {timeout:.0f} s (last: {last})"
    )


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: smoke_test.py BASE_URL METADATA [TIMEOUT_SECONDS]", file=sys.stderr)
        return 2
    base, metadata = argv[1].rstrip("/"), json.loads(Path(argv[2]).read_text())
    wait_ready(base, float(argv[3]) if len(argv) == 4 else 60.0)
    row = example_row(metadata["features"])
    request = urllib.request.Request(
        f"{base}/predict",
        data=json.dumps(row).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        body = error.read()[:500]
        raise SystemExit(f"::error::POST /predict answered {error.code}: {body!r}") from None
    classes = metadata["target"]["classes"]
    text = json.dumps(answer)
    if not any(f'"{label}"' in text for label in classes):
        raise SystemExit(f"::error::POST /predict answered {text[:500]}, naming none of {classes}")
    print(f"ready, and one prediction: {text[:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
