"""A stand-in for the slice of GitHub's REST API that the drift workflow uses (issues),
served on 127.0.0.1 from a thread, with the calls it received kept for assertions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class IssuesState:
    repository: str
    token: str
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)


def _handler(state: IssuesState) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{state.repository}/issues"

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

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self._reply(401, {"message": "Bad credentials"})
                return False
            return True

        def _json(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return loaded

        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.calls.append(("GET", url.path))
            if not self._authorised():
                return
            if url.path != prefix:
                self._reply(404, {"message": "Not Found"})
                return
            query = parse_qs(url.query)
            label = query.get("labels", [None])[0]
            wanted = query.get("state", ["open"])[0]
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
            if not self._authorised():
                return
            if self.path != prefix:
                self._reply(404, {"message": "Not Found"})
                return
            payload = self._json()
            issue = {
                "number": len(state.issues) + 1,
                "state": "open",
                "title": payload["title"],
                "body": payload["body"],
                "labels": payload.get("labels", []),
            }
            state.issues.append(issue)
            self._reply(201, issue)

        def do_PATCH(self) -> None:
            state.calls.append(("PATCH", self.path))
            if not self._authorised():
                return
            number = self.path.rsplit("/", 1)[-1]
            for issue in state.issues:
                if self.path == f"{prefix}/{number}" and str(issue["number"]) == number:
                    issue.update(
                        {k: v for k, v in self._json().items() if k in {"title", "body", "state"}}
                    )
                    self._reply(200, issue)
                    return
            self._reply(404, {"message": "Not Found"})

    return Handler


@contextmanager
def github_issues_api(repository: str, token: str) -> Iterator[tuple[str, IssuesState]]:
    """Yield (api_url, state) for a stand-in API on a free port of 127.0.0.1."""
    state = IssuesState(repository, token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
