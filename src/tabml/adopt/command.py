"""`tabml init`: check every input first, then rename, retarget, run the pipeline, commit.

Nothing is written until every check has passed. Once writing starts, a failure
restores the work tree to the commit it started from (the tree was clean then), so a
failed run can simply be repeated after fixing its cause.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.metadata
import importlib.util
import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from tabml.adopt import FIELDS, tools
from tabml.adopt import data as data_file
from tabml.adopt.names import Names, check_package_name, check_project_name, python_identifiers
from tabml.adopt.params_edit import ParamsEditError, Setting, current_values, set_params
from tabml.adopt.rename import RenamePlan, drop_project_from_lock, mentions, plan_rename
from tabml.adopt.tools import StepError
from tabml.config import load_schema, parse_params
from tabml.errors import InputError, PipelineError
from tabml.schema_infer import infer_schema

REMOTE_NAME = "storage"
# The template's own remote is a local folder under this path; init replaces it.
EXAMPLE_REMOTE_PREFIX = "~/.dvc-remotes/"
EXTERNAL_DATA = "data/external"
SENSITIVE_ATTRIBUTE_COMMENT = (
    "A column whose groups the fairness section compares (e.g. an age band); null skips it.",
)


@dataclass(frozen=True)
class InitRequest:
    project: str
    package: str
    data: Path
    target: str
    remote: str
    # --delimiter as a separator; None: detected from a CSV file's header line.
    delimiter: str | None = None


@dataclass
class InitPlan:
    """Everything init will do, decided before anything is written."""

    old: Names
    new: Names
    rename: RenamePlan
    data_source: Path
    data_dest: str
    copy_data: bool
    untrack_data_from_git: bool
    schema_path: str
    schema_text: str | None
    params_text: str | None
    clear_outputs: list[str]
    remote_url: str
    set_remote: bool
    drop_remote: str | None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- inputs


def gather(args: argparse.Namespace, ask: Callable[[str], str] = input) -> InitRequest:
    """The request from the flags; missing ones are asked for on a terminal only."""
    values: dict[str, str] = {}
    for attribute, flag, prompt in FIELDS:
        value = getattr(args, attribute)
        if value is None:
            if not sys.stdin.isatty():
                raise InputError(
                    f"{flag}: required (stdin is not a terminal, so it cannot be asked for)"
                )
            value = ask(f"{prompt}: ").strip()
        if not value:
            raise InputError(f"{flag} {value!r}: must not be empty")
        values[attribute] = value
    delimiter: str | None = getattr(args, "delimiter", None)
    return InitRequest(
        project=values["project_name"],
        package=values["package_name"],
        data=Path(values["data"]).expanduser(),
        target=values["target"],
        remote=values["remote"],
        delimiter=None if delimiter is None else data_file.parse_delimiter(delimiter),
    )


# --------------------------------------------------------------------------- checks


def _check_git(root: Path) -> None:
    top = tools.run(["git", "rev-parse", "--show-toplevel"], root, check=False)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
        raise InputError(f"{root}: must be the top folder of a git work tree (run init there)")
    # --no-optional-locks: a refusal must leave even .git/index untouched.
    status = tools.run(
        ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"], root
    ).stdout
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    if changed:
        shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
        raise InputError(
            f"git working tree: {len(changed)} uncommitted change(s) ({shown}); "
            "must be clean, so that init's changes are one reviewable commit "
            "(commit or stash them first)"
        )
    if tools.run(["git", "var", "GIT_COMMITTER_IDENT"], root, check=False).returncode != 0:
        raise InputError(
            "git identity: not set; init commits its result "
            "(git config user.name ...; git config user.email ...)"
        )


def _current_names(root: Path) -> Names:
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    match = re.fullmatch(r"src/(\w+)", packages[0]) if len(packages) == 1 else None
    if match is None:
        raise InputError(f"pyproject.toml: expected one wheel package src/<name>, got {packages}")
    return Names(project=str(pyproject["project"]["name"]), package=match.group(1))


def _read_texts(root: Path, paths: list[str], old: Names) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in paths:
        raw = (root / path).read_bytes()
        try:
            texts[path] = raw.decode("utf-8")
        except UnicodeDecodeError:
            if old.package.encode() in raw.lower():
                raise InputError(
                    f"{path}: a binary file that mentions {old.package!r}; init renames "
                    "text files only (rename it inside the file by hand, commit, rerun)"
                ) from None
    return texts


def _locked_dependencies(lock_text: str, project: str) -> list[str]:
    names = re.findall(r'^name = "([^"]+)"$', lock_text, re.MULTILINE)
    return [name for name in names if name != project]


def _installed_modules() -> set[str]:
    return set(importlib.metadata.packages_distributions())


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _check_remote(url: str) -> None:
    if any(character.isspace() for character in url):
        raise InputError(f"--remote {url!r}: must not contain whitespace")
    if "://" in url and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$", url):
        raise InputError(f"--remote {url!r}: must be a URL such as s3://bucket/path, or a folder")


def _schema_path(root: Path, stem: str, configured: str, data_is_configured: bool) -> str:
    """schemas/<stem>.yaml, unless that name is taken by another dataset's schema."""
    base = re.sub(r"[^0-9A-Za-z_-]+", "_", stem).strip("_") or "data"
    if data_is_configured:
        return configured
    candidate, number = f"schemas/{base}.yaml", 2
    while (root / candidate).exists():
        candidate, number = f"schemas/{base}_{number}.yaml", number + 1
    return candidate


def _outputs(dvc_yaml: str) -> list[str]:
    """Every path a dvc.yaml stage writes (outs, metrics, plots)."""
    stages = (yaml.safe_load(dvc_yaml) or {}).get("stages", {})
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return paths


def _data_delimiter(source: Path, request: InitRequest, notes: list[str]) -> str:
    """The field separator to read the data with: --delimiter, else the one a CSV file's
    header line shows (said in `notes` when it is not a comma); a comma for Parquet."""
    if source.suffix.lower() != ".csv":
        if request.delimiter not in (None, ","):
            name = data_file.delimiter_name(request.delimiter)
            raise InputError(
                f"--delimiter {name!r}: applies to a CSV file only; must be left out for "
                f"{str(request.data)!r}"
            )
        return ","
    if request.delimiter is not None:
        return request.delimiter
    detected = data_file.detect_delimiter(source)
    if detected != ",":
        name = data_file.delimiter_name(detected)
        notes.append(
            f"read {request.data} as {name!r}-delimited, as its header line shows "
            f"(--delimiter chooses another); params.yaml data.delimiter = {detected!r}"
        )
    return detected


def prepare(root: Path, request: InitRequest) -> InitPlan:
    """Every check, and the plan; writes nothing."""
    _check_git(root)
    tools.uv()
    old = _current_names(root)
    new = Names(project=request.project, package=request.package)
    lock_text = (root / "uv.lock").read_text(encoding="utf-8")
    check_project_name(new.project, _locked_dependencies(lock_text, old.slug))
    tracked = tools.tracked_files(root)
    texts = _read_texts(root, tracked, old)
    identifiers = python_identifiers({p: t for p, t in texts.items() if p.endswith(".py")})
    installed = _installed_modules() - {old.package}
    if new.package != old.package and _module_exists(new.package):
        installed.add(new.package)
    check_package_name(
        new.package, current=old.package, installed_modules=installed, identifiers=identifiers
    )
    _check_remote(request.remote)

    params_text = texts["params.yaml"]
    params = parse_params(yaml.safe_load(params_text))
    source = request.data if request.data.is_absolute() else Path.cwd() / request.data
    notes: list[str] = []
    delimiter = _data_delimiter(source, request, notes)
    frame = data_file.read_table(source, delimiter)
    data_file.check_target(
        frame,
        request.target,
        params.validate_.min_rows,
        str(request.data),
        min_rows_per_class=params.validate_.min_rows_per_class,
    )

    # Data: in data/external/ under its own name; copied unless it is already there.
    data_dest = f"{EXTERNAL_DATA}/{source.name}"
    dest = root / data_dest
    in_place = dest.exists() and dest.resolve() == source.resolve()
    if dest.exists() and not in_place and not filecmp.cmp(dest, source, shallow=False):
        raise InputError(
            f"--data {str(request.data)!r}: {data_dest} exists with other contents; "
            "must not overwrite it (rename your file, or remove that one first)"
        )
    copy_data = not dest.exists()
    data_is_configured = (
        params.data.source == "file"
        and params.data.path == data_dest
        and (root / params.validate_.schema_path).is_file()
    )
    schema_path = _schema_path(root, source.stem, params.validate_.schema_path, data_is_configured)
    schema_text: str | None = None
    if data_is_configured:
        existing = load_schema(root / schema_path)
        if existing.target.name != request.target:
            raise InputError(
                f"--target {request.target!r}: {schema_path} (the schema params.yaml names) "
                f"has target {existing.target.name!r}; must match (edit or delete the schema "
                "and rerun)"
            )
        notes.append(f"{schema_path} exists; kept as it is (review it by hand)")
    else:
        inferred = infer_schema(frame, request.target).model_dump(mode="json")
        schema_text = (
            f"# Data schema inferred by `{new.slug} init` from {data_dest}.\n"
            "# Review it: tighten the ranges, list the labels you expect, set null "
            "allowances.\n" + yaml.safe_dump(inferred, sort_keys=False)
        )

    special = {"uv.lock": lambda text: drop_project_from_lock(text, old.slug)}
    rename = plan_rename(texts, old, new, special)
    renamed = {rename.moves.get(path, path): text for path, text in texts.items()}
    renamed.update(rename.contents)
    if old != new:
        gone = old.spellings() - new.spellings()
        left = [found for name in sorted(gone) for found in mentions(renamed, name)]
        if left:
            raise InputError(
                f"rename {old.package!r} -> {new.package!r}: {len(left)} mention(s) would "
                "remain, which init has no rule for: " + "; ".join(left[:5])
            )

    if not rename.empty:
        _format_renamed_python(root, rename, renamed, new)

    new_params = _params_edit(
        renamed["params.yaml"], frame, request, _DataTarget(data_dest, delimiter, schema_path)
    )
    edited_params = new_params if new_params != renamed["params.yaml"] else None
    if edited_params is not None:
        parse_params(yaml.safe_load(edited_params))

    config = tools.dvc_config(root)
    default = config.get("core.remote")
    set_remote = not (
        default == REMOTE_NAME and config.get(f"remote.{REMOTE_NAME}.url") == request.remote
    )
    drop_remote = None
    # dvc lists the URL with ~ expanded.
    default_url = config.get(f"remote.{default}.url", "")
    example_url = default_url.startswith(
        (EXAMPLE_REMOTE_PREFIX, f"{Path(EXAMPLE_REMOTE_PREFIX).expanduser()}/")
    )
    if default and default != REMOTE_NAME and example_url:
        drop_remote = default

    clear: list[str] = []
    if not data_is_configured:
        clear = ["dvc.lock", *_outputs(renamed["dvc.yaml"])]

    return InitPlan(
        old=old,
        new=new,
        rename=rename,
        data_source=source,
        data_dest=data_dest,
        copy_data=copy_data,
        untrack_data_from_git=data_dest in tracked,
        schema_path=schema_path,
        schema_text=schema_text,
        params_text=edited_params,
        clear_outputs=clear,
        remote_url=request.remote,
        set_remote=set_remote,
        drop_remote=drop_remote,
        notes=notes,
    )


def _format_renamed_python(
    root: Path, rename: RenamePlan, renamed: dict[str, str], new: Names
) -> None:
    """Sort imports and format the renamed Python files as the project's ruff settings
    ask (the new name sorts and wraps differently), in a scratch copy; refuse a name
    that leaves lines over the length limit that the formatter cannot wrap.
    """
    python = [path for path in rename.contents if path.endswith(".py")]
    if not python:
        return
    with tempfile.TemporaryDirectory(prefix="init-format-") as scratch:
        work = Path(scratch)
        # Every Python file, so that isort knows which modules are first-party.
        every = [path for path in renamed if path.endswith(".py")]
        for path in [*every, "pyproject.toml"]:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(renamed[path], encoding="utf-8")
        ruff = tools.ruff()
        for command in (
            [ruff, "check", "--quiet", "--fix-only", "--select", "I", *python],
            [ruff, "format", "--quiet", *python],
        ):
            tools.run(command, work)
        too_long = tools.run(
            [ruff, "check", "--quiet", "--select", "E501", "--output-format", "concise", *python],
            work,
            check=False,
        ).stdout.splitlines()
        if too_long:
            raise InputError(
                f"--package-name {new.package!r}: renaming to it leaves {len(too_long)} "
                "line(s) over the line length ruff enforces (pyproject.toml), which the "
                "formatter cannot wrap; choose a shorter name, or shorten these lines, "
                "commit and rerun: " + "; ".join(too_long[:5])
            )
        for path in python:
            formatted = (work / path).read_text(encoding="utf-8")
            renamed[path] = formatted
            rename.contents[path] = formatted


@dataclass(frozen=True)
class _DataTarget:
    """Where params.yaml is to point: the data file, its separator, its schema."""

    path: str
    delimiter: str
    schema_path: str


def _params_edit(text: str, frame: pd.DataFrame, request: InitRequest, data: _DataTarget) -> str:
    data_dest, schema_path = data.path, data.schema_path
    retarget = [
        Setting("data", "source", "file"),
        Setting("data", "sklearn_dataset", None),
        Setting("data", "path", data_dest),
        Setting("validate", "schema", schema_path),
    ]
    # A params.yaml from before data.delimiter existed is left without it for commas.
    if data.delimiter != "," or "delimiter" in (yaml.safe_load(text).get("data") or {}):
        retarget.append(Setting("data", "delimiter", data.delimiter))
    intended_use, limitations = data_file.model_card_text(
        frame, request.target, data_dest, schema_path
    )
    card = [
        Setting("model_card", "intended_use", intended_use),
        Setting("model_card", "limitations", limitations),
        Setting("model_card", "slices", data_file.slice_columns(frame, request.target)),
        Setting("model_card", "sensitive_attribute", None, SENSITIVE_ATTRIBUTE_COMMENT),
    ]
    now = current_values(text, retarget)
    if all(now[setting.dotted] == setting.value for setting in retarget):
        # Already pointing at this data: the model card may have been edited since.
        return text
    try:
        return set_params(text, retarget + card)
    except ParamsEditError as error:
        raise InputError(f"params.yaml: {error}; set these keys by hand and rerun") from None


# --------------------------------------------------------------------------- applying


def _remove_empty_dirs(root: Path, directory: Path) -> None:
    """Remove `directory` when only interpreter caches are left in it."""
    if not directory.is_dir():
        return
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for sub in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    if not any(directory.iterdir()):
        directory.rmdir()


def _apply_rename(root: Path, plan: InitPlan) -> None:
    rename = plan.rename
    for old_path, new_path in rename.moves.items():
        target = root / new_path
        target.parent.mkdir(parents=True, exist_ok=True)
        (root / old_path).rename(target)
    for path, text in rename.contents.items():
        (root / path).write_text(text, encoding="utf-8")
    old_roots = {Path(old_path).parts[0:2] for old_path in rename.moves}
    for parts in old_roots:
        candidate = root.joinpath(*parts)
        if candidate.is_dir():
            _remove_empty_dirs(root, candidate)


def _apply(root: Path, plan: InitPlan, created: list[Path]) -> list[str]:
    uv = tools.uv()
    dvc = [uv, "run", "--locked", "dvc"]
    done: list[str] = []
    if plan.rename.empty:
        done.append(f"already initialised as {plan.new.package}; nothing to rename")
    else:
        _apply_rename(root, plan)
        tools.lock(root, uv)
        done.append(
            f"renamed {plan.old.package} -> {plan.new.package} "
            f"(project {plan.new.project}): {len(plan.rename.contents)} file(s) edited, "
            f"{len(plan.rename.moves)} moved; uv.lock updated"
        )
    tools.run([uv, "sync", "--locked"], root)

    dest = root / plan.data_dest
    if plan.copy_data:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plan.data_source, dest)
        created.append(dest)
        done.append(f"copied {plan.data_source} to {plan.data_dest}")
    else:
        done.append(f"{plan.data_dest} already in place")
    if plan.schema_text is not None:
        schema = root / plan.schema_path
        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(plan.schema_text, encoding="utf-8")
        done.append(f"inferred {plan.schema_path}: review its ranges and labels")
    done.extend(plan.notes)
    if plan.params_text is not None:
        (root / "params.yaml").write_text(plan.params_text, encoding="utf-8")
        done.append(
            f"params.yaml: data.path = {plan.data_dest}, validate.schema = {plan.schema_path}, "
            "model_card rewritten for this data (review intended_use and limitations)"
        )
    else:
        done.append("params.yaml already points at this data")
    for output in plan.clear_outputs:
        path = root / output
        if path.is_file():
            path.unlink()
    if plan.clear_outputs:
        done.append("cleared the example's dvc.lock and pipeline outputs")

    if plan.untrack_data_from_git:
        tools.run(["git", "rm", "-q", "--cached", plan.data_dest], root)
    tools.run([*dvc, "add", plan.data_dest], root)
    if plan.set_remote:
        tools.run(
            [*dvc, "remote", "add", "--default", "--force", REMOTE_NAME, plan.remote_url], root
        )
        if plan.drop_remote:
            tools.run([*dvc, "remote", "remove", plan.drop_remote], root)
        done.append(f"DVC remote {REMOTE_NAME!r} ({plan.remote_url}) is the default")
    else:
        done.append(f"DVC remote {REMOTE_NAME!r} already set to {plan.remote_url}")

    repro = tools.run([*dvc, "repro"], root)
    ran = re.findall(r"Running stage '([^']+)'", repro.stdout)
    done.append(f"pipeline ran: {', '.join(ran)}" if ran else "pipeline up to date")

    tools.run(["git", "add", "-A"], root)
    if tools.run(["git", "status", "--porcelain"], root).stdout.strip():
        message = (
            f"Initialise {plan.new.project} ({plan.new.package}) from the template "
            f"on {plan.data_dest}"
        )
        tools.run(["git", "commit", "-q", "-m", message], root)
        head = tools.run(["git", "rev-parse", "--short", "HEAD"], root).stdout.strip()
        done.append(f"committed {head}: {message}")
    else:
        done.append("nothing to commit: the project was already initialised with these inputs")
    return done


def _restore(root: Path, plan: InitPlan, created: list[Path]) -> None:
    """Back to the commit init started from: the tree was clean, so nothing else is lost."""
    tools.run(["git", "reset", "-q", "--hard", "HEAD"], root, check=False)
    tools.run(["git", "clean", "-fdq"], root, check=False)
    for path in created:
        path.unlink(missing_ok=True)
    if plan.old.package != plan.new.package:
        leftover = root / "src" / plan.new.package
        if leftover.is_dir():
            shutil.rmtree(leftover)
    uv = tools.find_uv()
    if uv:
        tools.run([uv, "sync", "--locked"], root, check=False)


def run(args: argparse.Namespace) -> str:
    root = Path.cwd()
    request = gather(args)
    plan = prepare(root, request)
    created: list[Path] = []
    try:
        done = _apply(root, plan, created)
    except BaseException as error:
        _restore(root, plan, created)
        if isinstance(error, PipelineError):
            raise StepError(f"{error}\nthe work tree is restored to HEAD") from None
        raise
    return "\n  ".join(["done:", *done])
