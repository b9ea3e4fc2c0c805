"""A stand-in for the slice of GitHub's REST API that the drift and promote workflows use
(issues, pull requests, a release by its tag), served on 127.0.0.1 from a thread, with
the calls it received kept for assertions."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


@dataclass
class IssuesState:
    repository: str
    token: str
    # Other tokens the API accepts (a GitHub App's installation token).
    other_tokens: tuple[str, ...] = ()
    # The repository's git directory: a pull request's head branch must exist in it.
    git_dir: Path | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    # Releases by tag name: {"body": notes, "html_url": ...}, as the test publishes them.
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def next_number(self) -> int:
        # Issues and pull requests share one sequence of numbers, as on GitHub.
        return len(self.issues) + len(self.pulls) + 1

    def branch_exists(self, branch: str) -> bool:
        if self.git_dir is None:
            return True
        found = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.git_dir),
                "rev-parse",
                "--verify",
                "-q",
                f"refs/heads/{branch}",
            ],
            capture_output=True,
            check=False,
        )
        return found.returncode == 0


def _handler(state: IssuesState) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{state.repository}/issues"
    pulls = f"/repos/{state.repository}/pulls"
    release_by_tag = f"/repos/{state.repository}/releases/tags/"
    owner = state.repository.split("/")[0]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def _reply(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _token(self) -> str | None:
            """The caller's token when the API accepts it; else a 401 has been sent."""
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if given not in (state.token, *state.other_tokens):
                self._reply(401, {"message": "Bad credentials"})
                return None
            return given

        def _json(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return loaded

        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.calls.append(("GET", url.path))
            if self._token() is None:
                return
            if url.path.startswith(release_by_tag):
                tag = unquote(url.path.removeprefix(release_by_tag))
                if tag in state.releases:
                    self._reply(200, {"tag_name": tag, **state.releases[tag]})
                else:
                    self._reply(404, {"message": "Not Found"})
                return
            query = parse_qs(url.query)
            wanted = query.get("state", ["open"])[0]
            if url.path == pulls:
                head = query.get("head", [None])[0]
                base = query.get("base", [None])[0]
                self._reply(
                    200,
                    [
                        pull
                        for pull in state.pulls
                        if pull["state"] == wanted
                        and (head is None or head == f"{owner}:{pull['head']['ref']}")
                        and (base is None or base == pull["base"]["ref"])
                    ],
                )
                return
            if url.path != prefix:
                self._reply(404, {"message": "Not Found"})
                return
            label = query.get("labels", [None])[0]
            self._reply(
                200,
                [
                    issue
                    for issue in state.issues
                    if issue["state"] == wanted and (label is None or label in issue["labels"])
                ],
            )

        def do_POST(self) -> None:
            state.calls.append(("POST", self.path))
            token = self._token()
            if token is None:
                return
            payload = self._json()
            if self.path == pulls:
                self._open_pull(payload, token)
                return
            if self.path != prefix:
                self._reply(404, {"message": "Not Found"})
                return
            issue = {
                "number": state.next_number(),
                "state": "open",
                "title": payload["title"],
                "body": payload["body"],
                "labels": payload.get("labels", []),
            }
            state.issues.append(issue)
            self._reply(201, issue)

        def _open_pull(self, payload: dict[str, Any], token: str) -> None:
            if not state.branch_exists(payload["head"]):
                self._reply(422, {"message": "Validation Failed", "errors": [{"field": "head"}]})
                return
            pull = {
                "number": state.next_number(),
                "state": "open",
                "title": payload["title"],
                "body": payload["body"],
                "head": {"ref": payload["head"]},
                "base": {"ref": payload["base"]},
                "opened_with": token,
            }
            state.pulls.append(pull)
            self._reply(201, pull)

        def do_PATCH(self) -> None:
            state.calls.append(("PATCH", self.path))
            if self._token() is None:
                return
            collection, number = self.path.rsplit("/", 1)
            entries = {prefix: state.issues, pulls: state.pulls}.get(collection, [])
            for entry in entries:
                if str(entry["number"]) == number:
                    entry.update(
                        {k: v for k, v in self._json().items() if k in {"title", "body", "state"}}
                    )
                    self._reply(200, entry)
                    return
            self._reply(404, {"message": "Not Found"})

    return Handler


@contextmanager
def github_issues_api(
    repository: str,
    token: str,
    other_tokens: tuple[str, ...] = (),
    git_dir: Path | None = None,
) -> Iterator[tuple[str, IssuesState]]:
    """Yield (api_url, state) for a stand-in API on a free port of 127.0.0.1."""
    state = IssuesState(repository, token, other_tokens, git_dir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
