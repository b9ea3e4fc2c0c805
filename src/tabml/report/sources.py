"""The report's inputs: this work tree's files and the base revision's, read through git."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tabml.config import ConfigError, GateParams, Params, parse_params
from tabml.errors import InputError
from tabml.report.gate import judge
from tabml.report.render import Report, diff_params
from tabml.validation import problems


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def at_revision(root: Path, revision: str, path: str) -> str | None:
    """The text of `path` at `revision`, or None when the file did not exist there."""
    if _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").returncode != 0:
        raise InputError(f"--base {revision!r}: no such git revision in {root}")
    shown = _git(root, "show", f"{revision}:{path}")
    return shown.stdout if shown.returncode == 0 else None


def _json(text: str | None, where: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON: {exc}") from None


def _gate(raw_params: dict[str, Any], where: str) -> GateParams | None:
    if "gate" not in raw_params:
        return None
    try:
        return GateParams.model_validate(raw_params["gate"])
    except ValidationError as exc:
        found = "; ".join(
            replace(problem, key=".".join(filter(None, ("gate", problem.key)))).describe()
            for problem in problems(exc)
        )
        raise InputError(f"{where}: gate section is invalid: {found}") from None


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """Base params with their defaults filled in, so only real changes show in the diff.

    A base branch written for an older params schema is compared as it is.
    """
    try:
        return parse_params(raw).model_dump(mode="json", by_alias=True)
    except ConfigError:
        return raw


@dataclass(frozen=True)
class ReportSources:
    """What the report compares: the work tree at `root` (the challenger, named
    `new_ref`) with the git revision `base` (the champion), the files read from both, and
    where the uploaded plots are linked from."""

    root: Path
    base: str
    new_ref: str
    params: Params
    params_path: str
    metrics_path: str
    roc_path: str
    artifact_url: str | None


def build_report(sources: ReportSources) -> Report:
    """Compare this work tree (the challenger) with revision `base` (the champion)."""
    root, base, params = sources.root, sources.base, sources.params
    params_path, metrics_path, roc_path = (
        sources.params_path,
        sources.metrics_path,
        sources.roc_path,
    )
    for flag, path in (("--params", params_path), ("--metrics", metrics_path), ("--roc", roc_path)):
        # The same path is read from the work tree and from the base revision.
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise InputError(f"{flag} {path}: must be relative to the repository root")
    new_metrics = _json(
        (root / metrics_path).read_text(encoding="utf-8")
        if (root / metrics_path).is_file()
        else None,
        metrics_path,
    )
    if not isinstance(new_metrics, dict):
        raise InputError(f"{metrics_path}: no metrics in this work tree; run `dvc repro` first")
    base_metrics = _json(at_revision(root, base, metrics_path), f"{base}:{metrics_path}") or {}

    base_params_text = at_revision(root, base, params_path)
    raw_base_params = yaml.safe_load(base_params_text) if base_params_text else {}
    if not isinstance(raw_base_params, dict):
        raw_base_params = {}
    base_params = _normalised(raw_base_params)
    new_params = params.model_dump(mode="json", by_alias=True)
    # The champion's rules judge the challenger, so a branch cannot loosen its own gate.
    base_gate = _gate(raw_base_params, f"{base}:{params_path}")
    gate = base_gate or params.gate
    gate_changes = (
        diff_params({"gate": base_params["gate"]}, {"gate": new_params["gate"]})
        if base_gate is not None
        else []
    )
    new_roc = _json(
        (root / roc_path).read_text(encoding="utf-8") if (root / roc_path).is_file() else None,
        roc_path,
    )
    return Report(
        base_ref=base,
        new_ref=sources.new_ref,
        verdict=judge(base_metrics, new_metrics, gate),
        param_changes=diff_params(base_params, new_params),
        gate_changes=gate_changes,
        base_roc=_json(at_revision(root, base, roc_path), f"{base}:{roc_path}"),
        new_roc=new_roc,
        artifact_url=sources.artifact_url,
    )
