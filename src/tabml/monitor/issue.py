"""File drift as a GitHub issue, or update the open one instead of filing another.

The body is built by a pure function; the REST calls go through
`tabml.monitor.github.GitHubClient`.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from tabml.monitor.github import GitHubClient

MARKER = "<!-- tabml-drift -->"


def issue_title(summary: dict[str, Any]) -> str:
    drifted = summary["drifted_features"]
    what = f"{len(drifted)} feature(s)" if drifted else "predictions"
    return f"Data drift detected: {what} past the thresholds"


def issue_body(summary: dict[str, Any], run_url: str | None, sample: str) -> str:
    """Markdown for the issue: the verdict, the drifted features, and where to look."""
    lines = [
        MARKER,
        "## Drift detected",
        "",
        f"Sample `{sample}`: {summary['sample_rows']} rows against "
        f"{summary['reference_rows']} reference rows.",
        "",
    ]
    lines += [f"- {reason}" for reason in summary["reasons"]]
    drifted = [f for f in summary["features"] if f["drifted"]]
    if drifted:
        lines += ["", "| feature | test | p-value | PSI |", "|---|---|---:|---:|"]
        lines += [
            f"| {f['feature']} | {f['test']} | {f['p_value']:.2e} | "
            f"{'—' if f['psi'] is None else format(f['psi'], '.3f')} |"
            for f in drifted
        ]
    p = summary["predictions"]
    lines += [
        "",
        f"Predicted-class shares: reference {p['reference_shares']}, sample "
        f"{p['sample_shares']} (PSI {p['psi']:.3f}).",
        "",
    ]
    if run_url:
        lines.append(f"The full HTML report is attached to [the workflow run]({run_url}).")
    lines.append("This issue is updated, not duplicated, while it stays open.")
    return "\n".join(lines) + "\n"


def file_or_update(client: GitHubClient, title: str, body: str, label: str) -> tuple[str, int]:
    """Update the open issue that carries `label` and our marker, or open a new one."""
    query = urllib.parse.urlencode({"labels": label, "state": "open", "per_page": 100})
    for issue in client.call("GET", f"/issues?{query}") or []:
        if "pull_request" not in issue and MARKER in (issue.get("body") or ""):
            client.call("PATCH", f"/issues/{issue['number']}", {"title": title, "body": body})
            return "updated", int(issue["number"])
    created = client.call("POST", "/issues", {"title": title, "body": body, "labels": [label]})
    return "created", int(created["number"])
