"""What `tabml init` will do, decided before anything is written.

Each planner settles one concern (the data, its schema, the rename, params.yaml, the DVC
remote) and returns a frozen value; `prepare` runs the checks and the planners in a
fixed order, so that the first problem found is the one reported, and writes nothing.
"""

from __future__ import annotations

import filecmp
import importlib.metadata
import importlib.util
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from tabml.adopt import data as data_file
from tabml.adopt import tools
from tabml.adopt.names import Names, check_package_name, check_project_name, python_identifiers
from tabml.adopt.params_edit import ParamsEditError, Setting, current_values, set_params
from tabml.adopt.rename import RenamePlan, drop_project_from_lock, mentions, plan_rename
from tabml.config import Params, load_schema, parse_params
from tabml.errors import InputError
from tabml.schema_infer import infer_schema, schema_file_text
from tabml.tables import read_table

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


@dataclass(frozen=True)
class DataPlan:
    """The user's data file, read and checked, and its place in the project."""

    source: Path
    # data/external/<the file's name>, relative to the project.
    dest: str
    delimiter: str
    frame: pd.DataFrame = field(compare=False, repr=False)
    # False when `dest` already holds this file.
    copy: bool
    untrack_from_git: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaPlan:
    path: str
    # The inferred schema to write; None keeps the one params.yaml already names.
    text: str | None
    notes: tuple[str, ...] = ()

    @property
    def kept(self) -> bool:
        return self.text is None


@dataclass(frozen=True)
class ProjectRename:
    plan: RenamePlan
    # Every tracked text file as it reads after the rename (path -> text).
    texts: Mapping[str, str]


@dataclass(frozen=True)
class RemotePlan:
    url: str
    # False when the default remote is already REMOTE_NAME at `url`.
    set_default: bool
    # The template's example remote, removed once the new one is the default.
    drop: str | None = None


@dataclass(frozen=True)
class InitPlan:
    """Everything init will do, decided before anything is written."""

    old: Names
    new: Names
    rename: RenamePlan
    data: DataPlan
    schema: SchemaPlan
    # The new params.yaml; None when it already points at this data.
    params_text: str | None
    clear_outputs: tuple[str, ...]
    remote: RemotePlan

    @property
    def notes(self) -> tuple[str, ...]:
        return self.data.notes + self.schema.notes


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


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _check_package(texts: Mapping[str, str], old: Names, new: Names) -> None:
    """The new package name is an identifier that shadows no installed module and no
    name the code already uses."""
    identifiers = python_identifiers({p: t for p, t in texts.items() if p.endswith(".py")})
    installed = set(importlib.metadata.packages_distributions()) - {old.package}
    if new.package != old.package and _module_exists(new.package):
        installed.add(new.package)
    check_package_name(
        new.package, current=old.package, installed_modules=installed, identifiers=identifiers
    )


def _check_remote(url: str) -> None:
    if any(character.isspace() for character in url):
        raise InputError(f"--remote {url!r}: must not contain whitespace")
    if "://" in url and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$", url):
        raise InputError(f"--remote {url!r}: must be a URL such as s3://bucket/path, or a folder")


# --------------------------------------------------------------------------- data


def _data_delimiter(source: Path, request: InitRequest) -> tuple[str, tuple[str, ...]]:
    """The field separator to read the data with: --delimiter, else the one a CSV file's
    header line shows (with a note when it is not a comma); a comma for Parquet."""
    if source.suffix.lower() != ".csv":
        if request.delimiter not in (None, ","):
            name = data_file.delimiter_name(request.delimiter)
            raise InputError(
                f"--delimiter {name!r}: applies to a CSV file only; must be left out for "
                f"{str(request.data)!r}"
            )
        return ",", ()
    if request.delimiter is not None:
        return request.delimiter, ()
    detected = data_file.detect_delimiter(source)
    if detected == ",":
        return detected, ()
    name = data_file.delimiter_name(detected)
    note = (
        f"read {request.data} as {name!r}-delimited, as its header line shows "
        f"(--delimiter chooses another); params.yaml data.delimiter = {detected!r}"
    )
    return detected, (note,)


def plan_data(root: Path, request: InitRequest, params: Params, tracked: list[str]) -> DataPlan:
    """The data read at its delimiter and checked as validate will check it; kept in
    data/external/ under its own name, copied there unless it is already there."""
    source = request.data if request.data.is_absolute() else Path.cwd() / request.data
    delimiter, notes = _data_delimiter(source, request)
    frame = read_table(source, field="--data", delimiter=delimiter)
    data_file.check_target(
        frame,
        request.target,
        params.validate_.min_rows,
        str(request.data),
        min_rows_per_class=params.validate_.min_rows_per_class,
    )
    data_dest = f"{EXTERNAL_DATA}/{source.name}"
    dest = root / data_dest
    in_place = dest.exists() and dest.resolve() == source.resolve()
    if dest.exists() and not in_place and not filecmp.cmp(dest, source, shallow=False):
        raise InputError(
            f"--data {str(request.data)!r}: {data_dest} exists with other contents; "
            "must not overwrite it (rename your file, or remove that one first)"
        )
    return DataPlan(
        source=source,
        dest=data_dest,
        delimiter=delimiter,
        frame=frame,
        copy=not dest.exists(),
        untrack_from_git=data_dest in tracked,
        notes=notes,
    )


# --------------------------------------------------------------------------- schema


def _schema_path(root: Path, stem: str) -> str:
    """schemas/<stem>.yaml, unless that name is taken by another dataset's schema."""
    base = re.sub(r"[^0-9A-Za-z_-]+", "_", stem).strip("_") or "data"
    candidate, number = f"schemas/{base}.yaml", 2
    while (root / candidate).exists():
        candidate, number = f"schemas/{base}_{number}.yaml", number + 1
    return candidate


def plan_schema(
    root: Path, params: Params, data: DataPlan, target: str, command: str
) -> SchemaPlan:
    """The schema params.yaml names, kept when params.yaml already points at this data;
    otherwise one inferred from it, to be written under a name of its own. `command` is
    the project's command, named in the inferred file's header."""
    configured = params.validate_.schema_path
    data_is_configured = (
        params.data.source == "file"
        and params.data.path == data.dest
        and (root / configured).is_file()
    )
    if not data_is_configured:
        inferred = infer_schema(data.frame, target)
        text = schema_file_text(inferred, command=f"{command} init", source=data.dest)
        return SchemaPlan(path=_schema_path(root, data.source.stem), text=text)
    existing = load_schema(root / configured)
    if existing.target.name != target:
        raise InputError(
            f"--target {target!r}: {configured} (the schema params.yaml names) "
            f"has target {existing.target.name!r}; must match (edit or delete the schema "
            "and rerun)"
        )
    return SchemaPlan(
        path=configured,
        text=None,
        notes=(f"{configured} exists; kept as it is (review it by hand)",),
    )


# --------------------------------------------------------------------------- rename


def _format_renamed_python(
    rename: RenamePlan, renamed: Mapping[str, str], new: Names
) -> dict[str, str]:
    """The renamed Python files with imports sorted and formatted as the project's ruff
    settings ask (the new name sorts and wraps differently), done in a scratch copy;
    refuses a name that leaves lines over the length limit the formatter cannot wrap.
    """
    python = [path for path in rename.contents if path.endswith(".py")]
    if not python:
        return {}
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
        return {path: (work / path).read_text(encoding="utf-8") for path in python}


def plan_project_rename(texts: Mapping[str, str], old: Names, new: Names) -> ProjectRename:
    """The moves and edits that rename `old` to `new` in the tracked `texts`, with the
    Python files formatted; refused when a mention of an old name would remain."""
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
    if rename.empty:
        return ProjectRename(rename, renamed)
    formatted = _format_renamed_python(rename, renamed, new)
    return ProjectRename(
        RenamePlan(rename.moves, {**rename.contents, **formatted}), {**renamed, **formatted}
    )


# --------------------------------------------------------------------------- params.yaml


def _params_edit(text: str, target: str, data: DataPlan, schema_path: str) -> str:
    retarget = [
        Setting("data", "source", "file"),
        Setting("data", "sklearn_dataset", None),
        Setting("data", "path", data.dest),
        Setting("validate", "schema", schema_path),
    ]
    # A params.yaml from before data.delimiter existed is left without it for commas.
    if data.delimiter != "," or "delimiter" in (yaml.safe_load(text).get("data") or {}):
        retarget.append(Setting("data", "delimiter", data.delimiter))
    intended_use, limitations = data_file.model_card_text(
        data.frame, target, data.dest, schema_path
    )
    card = [
        Setting("model_card", "intended_use", intended_use),
        Setting("model_card", "limitations", limitations),
        Setting("model_card", "slices", data_file.slice_columns(data.frame, target)),
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


def plan_params(text: str, target: str, data: DataPlan, schema: SchemaPlan) -> str | None:
    """params.yaml (`text`) pointed at the data and its schema, with a first model card;
    None when it already points there. The result parses, or this raises."""
    edited = _params_edit(text, target, data, schema.path)
    if edited == text:
        return None
    parse_params(yaml.safe_load(edited))
    return edited


# --------------------------------------------------------------------------- remote


def plan_remote(config: Mapping[str, str], url: str) -> RemotePlan:
    """REMOTE_NAME at `url` as the default, given the project's DVC settings (`dvc config
    --list`); the template's example remote is dropped when it is the default."""
    default = config.get("core.remote")
    set_default = not (default == REMOTE_NAME and config.get(f"remote.{REMOTE_NAME}.url") == url)
    # dvc lists the URL with ~ expanded.
    default_url = config.get(f"remote.{default}.url", "")
    example_url = default_url.startswith(
        (EXAMPLE_REMOTE_PREFIX, f"{Path(EXAMPLE_REMOTE_PREFIX).expanduser()}/")
    )
    drop = default if default and default != REMOTE_NAME and example_url else None
    return RemotePlan(url=url, set_default=set_default, drop=drop)


# --------------------------------------------------------------------------- the plan


def _outputs(dvc_yaml: str) -> list[str]:
    """Every path a dvc.yaml stage writes (outs, metrics, plots)."""
    stages = (yaml.safe_load(dvc_yaml) or {}).get("stages", {})
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return paths


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
    _check_package(texts, old, new)
    _check_remote(request.remote)

    params = parse_params(yaml.safe_load(texts["params.yaml"]))
    data = plan_data(root, request, params, tracked)
    schema = plan_schema(root, params, data, request.target, new.slug)
    rename = plan_project_rename(texts, old, new)
    params_text = plan_params(rename.texts["params.yaml"], request.target, data, schema)
    remote = plan_remote(tools.dvc_config(root), request.remote)
    # The example's outputs are of other data; kept when the data is already this.
    clear = () if schema.kept else ("dvc.lock", *_outputs(rename.texts["dvc.yaml"]))
    return InitPlan(
        old=old,
        new=new,
        rename=rename.plan,
        data=data,
        schema=schema,
        params_text=params_text,
        clear_outputs=clear,
        remote=remote,
    )
