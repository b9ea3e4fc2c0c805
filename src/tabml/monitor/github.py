"""The slice of GitHub's REST API the monitoring commands use, over the standard
library's urllib, against $GITHUB_API_URL on GitHub or on GitHub Enterprise alike."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tabml.errors import PipelineError


class GitHubError(PipelineError):
    """The GitHub API refused or failed a call."""


@dataclass(frozen=True)
class GitHubClient:
    api_url: str
    repository: str
    token: str

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        request = urllib.request.Request(
            url,
            method=method,
            data=None if payload is None else json.dumps(payload).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:500]
            raise GitHubError(f"{method} {url}: HTTP {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise GitHubError(f"{method} {url}: {error.reason}") from None
