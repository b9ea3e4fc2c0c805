"""`tabml init`: check every input first, then rename, retarget, run the pipeline, commit.

Nothing is written until every check has passed (`plan.prepare`). Once writing starts,
a failure restores the work tree to the commit it started from (the tree was clean
then), so a failed run can simply be repeated after fixing its cause.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from tabml.adopt import FIELDS, tools
from tabml.adopt import data as data_file
from tabml.adopt.plan import REMOTE_NAME, InitPlan, InitRequest, prepare
from tabml.adopt.tools import StepError
from tabml.errors import InputError, PipelineError

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


# --------------------------------------------------------------------------- applying


def _remove_empty_dirs(directory: Path) -> None:
    """Remove `directory` when only interpreter caches and compiled extension modules
    are left in it: the editable install compiled those beside their source (the C
    reader of request rows, hatch_build.py), and compiles them anew under the new name."""
    if not directory.is_dir():
        return
    for cache in list(directory.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for compiled in list(directory.rglob("*")):
        if compiled.is_file() and compiled.name.endswith(tuple(EXTENSION_SUFFIXES)):
            compiled.unlink()
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
            _remove_empty_dirs(candidate)


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

    dest = root / plan.data.dest
    if plan.data.copy:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plan.data.source, dest)
        created.append(dest)
        done.append(f"copied {plan.data.source} to {plan.data.dest}")
    else:
        done.append(f"{plan.data.dest} already in place")
    if plan.schema.text is not None:
        schema = root / plan.schema.path
        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(plan.schema.text, encoding="utf-8")
        done.append(f"inferred {plan.schema.path}: review its ranges and labels")
    done.extend(plan.notes)
    if plan.params_text is not None:
        (root / "params.yaml").write_text(plan.params_text, encoding="utf-8")
        done.append(
            f"params.yaml: data.path = {plan.data.dest}, validate.schema = {plan.schema.path}, "
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

    if plan.data.untrack_from_git:
        tools.run(["git", "rm", "-q", "--cached", plan.data.dest], root)
    tools.run([*dvc, "add", plan.data.dest], root)
    if plan.remote.set_default:
        tools.run(
            [*dvc, "remote", "add", "--default", "--force", REMOTE_NAME, plan.remote.url], root
        )
        if plan.remote.drop:
            tools.run([*dvc, "remote", "remove", plan.remote.drop], root)
        done.append(f"DVC remote {REMOTE_NAME!r} ({plan.remote.url}) is the default")
    else:
        done.append(f"DVC remote {REMOTE_NAME!r} already set to {plan.remote.url}")

    repro = tools.run([*dvc, "repro"], root)
    ran = re.findall(r"Running stage '([^']+)'", repro.stdout)
    done.append(f"pipeline ran: {', '.join(ran)}" if ran else "pipeline up to date")

    tools.run(["git", "add", "-A"], root)
    if tools.run(["git", "status", "--porcelain"], root).stdout.strip():
        message = (
            f"Initialise {plan.new.project} ({plan.new.package}) from the template "
            f"on {plan.data.dest}"
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
