"""Open the pull request that retrains the model after drift, or update the open one.

The drift workflow refreshes the data, reproduces the pipeline on a branch of its own
and pushes it; the pull request then goes through the same loop as any other change:
the train workflow's report and quality gate judge the new model, and a merge releases
it. The body is built by a pure function; the REST calls go through
`tabml.monitor.github.GitHubClient`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from tabml.monitor.github import GitHubClient

MARKER = "<!-- tabml-retrain -->"
TITLE = "Retrain on refreshed data after drift"


def pull_body(
    sample: str,
    changed: Sequence[str],
    issue: int | None,
    run_url: str | None,
    base: str,
) -> str:
    """Markdown for the pull request: why it exists, what changed, what happens next."""
    found = f"Drift was found in `{sample}`"
    if issue is not None:
        found += f" (#{issue})"
    if run_url:
        found += f" by [this run]({run_url})"
    lines = [
        MARKER,
        "## Retrain after drift",
        "",
        found + ". This branch refreshed the training data and reproduced the pipeline "
        "on it; the commit changes:",
        "",
        *[f"- `{name}`" for name in changed],
        "",
        f"The train workflow's report and quality gate compare the new model with the one "
        f"on `{base}`; merging releases it.",
        "The branch belongs to the drift workflow: its next retrain replaces this commit.",
    ]
    if issue is not None:
        lines += ["", f"Closes #{issue}."]
    return "\n".join(lines) + "\n"


def open_or_update(
    client: GitHubClient, branch: str, base: str, title: str, body: str
) -> tuple[str, int]:
    """Update the open pull request from `branch` into `base`, or open one."""
    owner = client.repository.split("/", 1)[0]
    query = urllib.parse.urlencode(
        {"head": f"{owner}:{branch}", "base": base, "state": "open", "per_page": 100}
    )
    for pull in client.call("GET", f"/pulls?{query}") or []:
        client.call("PATCH", f"/pulls/{pull['number']}", {"title": title, "body": body})
        return "updated", int(pull["number"])
    created = client.call(
        "POST", "/pulls", {"title": title, "head": branch, "base": base, "body": body}
    )
    return "opened", int(created["number"])
