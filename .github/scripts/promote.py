"""Promote a released model version to a stage: its image digest into the stage's overlay,
by a pull request, and a GTO stage tag.

Usage:
  promote.py check --version vX.Y.Z --stage STAGE [--base REF]
      the inputs, the version's release and its image digest, the order of stages;
      writes image, digest and tag to $GITHUB_OUTPUT; changes nothing
  promote.py apply --version vX.Y.Z --stage STAGE [--base REF] [--base-branch BRANCH]
                   [--expect-digest D] [--edit-only] [--verify-attestation]
      what check does, then: the overlay's image set to the release's digest in a commit
      on promote/STAGE (force-pushed; the working tree is not touched), the stage tag
      model#STAGE#N on the version's commit (pushed), and the stage's one pull request
      opened or updated. --edit-only edits deploy/overlays/STAGE/kustomization.yaml in
      the working tree and does nothing else.

The digest is the one the release workflow recorded in the notes of the GitHub release
model@vX.Y.Z (`Image: NAME:TAG@sha256:...`): a promotion moves an image that was built,
tested and attested once, and never builds one. Production takes only a version that has
run in staging: the staging overlay on the default branch (--base, default origin/main)
has named its digest at some commit, so its staging pull request was merged; and that GTO
has not since unassigned it from staging (model#staging!#N, `gto deprecate`).

Tags follow GTO (https://github.com/iterative/gto): release.yml registers versions as
model@vX.Y.Z, and a stage assignment is the annotated tag model#STAGE#N on the commit of
the version it assigns, N one more than the highest counter of any model# tag.

Environment: GITHUB_API_URL (default https://api.github.com), GITHUB_REPOSITORY (default:
from the origin URL), GITHUB_TOKEN (the API; else `gh auth token`), PUSH_TOKEN (pushes
over HTTPS with it; else git's own credentials).
Only the standard library: it runs before, and without, the project environment.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from release_info import TAG_PREFIX, git, read_model_tags
from resolve_base import commit_of

# The workflow whose attestations promote.py trusts.
RELEASE_WORKFLOW = ".github/workflows/release.yml"
ARTIFACT = "model"
# In the order a version goes through them: each one after the first takes only a version
# that has been in the one before it.
STAGES = ("staging", "production")
OVERLAYS = Path("deploy/overlays")
IMAGE_ENTRY = "tabml-serve"  # the image name the base Deployment uses, which overlays set
VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
# GTO's assignment (model#stage#N) and unassignment (model#stage!#N) tags; GTO's own
# pattern (gto/constants.py) allows the same stage names.
STAGE_TAG = re.compile(
    rf"^{ARTIFACT}#(?P<stage>[a-z0-9](?:[a-z0-9-/]*[a-z0-9])?)(?P<cancel>!?)#(?P<counter>\d+)$"
)
COUNTER = re.compile(rf"^{ARTIFACT}[@#].*#(?P<counter>\d+)$")
IMAGE_LINE = re.compile(r"^Image: `(?P<ref>[^`@\s]+)@(?P<digest>sha256:[0-9a-f]{64})`\s*$", re.M)
MODEL_LINE = re.compile(r"^- model version \(md5 of model\.onnx\): `(?P<md5>[0-9a-f]{32})`", re.M)
DATA_LINE = re.compile(r"^- data version \(md5 of the raw data\): `(?P<md5>[0-9a-f]{32})`", re.M)
METRIC_ROW = re.compile(r"^\| (?P<name>[^|]+?) \| (?P<value>[^|]+?) \|$")
# `git for-each-ref` fields: name, object, the commit an annotated tag names.
REF_FORMAT = "%(refname:strip=2)%1f%(objectname)%1f%(*objectname)"


class PromotionError(Exception):
    """A promotion that must not happen; the message says which input, value and rule."""

    def __init__(self, title: str, message: str) -> None:
        super().__init__(message)
        self.title = title


# --- inputs --------------------------------------------------------------------------


def check_inputs(version: str, stage: str) -> None:
    if not VERSION.match(version):
        raise PromotionError(
            "Bad input version",
            f"input version is {version!r}: it must be a model version vX.Y.Z "
            f"(the release workflow's tag {TAG_PREFIX}X.Y.Z without '{ARTIFACT}@'), e.g. v1.2.0",
        )
    if stage not in STAGES:
        raise PromotionError(
            "Bad input stage",
            f"input stage is {stage!r}: it must be one of {', '.join(STAGES)}",
        )


# --- stage tags (GTO) -------------------------------------------------------------------


@dataclass(frozen=True)
class StageTag:
    name: str
    stage: str
    counter: int
    assigned: bool  # False for GTO's unassignment (model#stage!#N)
    commit: str


def stage_tag_name(stage: str, counter: int) -> str:
    return f"{ARTIFACT}#{stage}#{counter}"


def parse_stage_tags(listing: str) -> list[StageTag]:
    """The model#stage#N tags in `git for-each-ref --format=REF_FORMAT` output."""
    tags = []
    for line in listing.splitlines():
        fields = line.split("\x1f")
        if len(fields) != 3:
            continue
        name, objectname, peeled = fields
        match = STAGE_TAG.match(name)
        if match is None:
            continue
        tags.append(
            StageTag(
                name=name,
                stage=match["stage"],
                counter=int(match["counter"]),
                assigned=match["cancel"] == "",
                commit=peeled or objectname,
            )
        )
    return tags


def next_counter(tag_names: Iterable[str]) -> int:
    """GTO's counter: one more than the highest of any of the artifact's tags that has one
    (version tags have none), so that N orders every stage change of the model."""
    counters = [int(m["counter"]) for m in map(COUNTER.match, tag_names) if m is not None]
    return max(counters, default=0) + 1


def current(stage: str, tags: Iterable[StageTag]) -> StageTag | None:
    """The stage's latest tag (GTO's current assignment), or None."""
    of_stage = [tag for tag in tags if tag.stage == stage]
    return max(of_stage, key=lambda tag: tag.counter) if of_stage else None


def previous_stage(stage: str) -> str | None:
    """The stage a version must have run in before `stage`, or None for the first."""
    index = STAGES.index(stage)
    return STAGES[index - 1] if index else None


def order_problem(stage: str, version: str, image: Image, *, base: str, ran: bool) -> str | None:
    """Why `version` may not enter `stage` yet, or None. A stage takes only a version whose
    image the stage before it has deployed (`ran`: the overlay of that stage on `base`
    has named the image's digest at some commit): what production runs has run in
    staging first. A stage tag records a promotion when its pull request opens, so it
    cannot tell a merged promotion from one still waiting. A merge reverted later still
    counts (it did run there); GTO's unassignment takes a version out (`withdrawal`)."""
    before = previous_stage(stage)
    if before is None or ran:
        return None
    return (
        f"input stage is {stage!r} for version {version}, which has never been in {before}: "
        f"{overlay_path(before).as_posix()} on {base} has never named its image "
        f"{image.digest}. A version enters {stage} only after {before} has deployed it: "
        f"promote it to {before} (make promote VERSION={version} STAGE={before}, or the "
        f"promote workflow) and merge that pull request (promote/{before}) first."
    )


def check_base(base: str) -> None:
    """`base` names a commit of this clone."""
    if commit_of(base) is None:
        raise PromotionError(
            "Bad input base",
            f"input base is {base!r}: no such commit in this clone; it must name the default "
            "branch's commit (fetch it first: git fetch origin)",
        )


def withdrawal(stage: str, commit: str, tags: Iterable[StageTag]) -> StageTag | None:
    """GTO's unassignment (model#stage!#N) of the version at `commit` from `stage`, when it
    is the latest of that stage's tags on the commit: the version was taken out of the
    stage, and a stay there before does not count."""
    on_commit = [tag for tag in tags if tag.stage == stage and tag.commit == commit]
    latest = max(on_commit, key=lambda tag: tag.counter, default=None)
    return latest if latest is not None and not latest.assigned else None


def overlay_named(base: str, stage: str, digest: str) -> bool:
    """Whether `stage`'s overlay has named `digest` at any commit in `base`'s history: a
    merged promotion (or an edit of one's own) put it there, an open one did not. `git
    log -S` lists the commits that add or remove the string, so a later promotion that
    replaced it still counts."""
    path = overlay_path(stage).as_posix()
    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        raise PromotionError(
            "Shallow clone",
            f"this clone's history is shallow, so whether {path} on {base} ever named "
            f"{digest} cannot be read: fetch the whole history (git fetch --unshallow; in a "
            "workflow, actions/checkout with fetch-depth: 0)",
        )
    return bool(git("log", "-1", "--format=%H", f"-S{digest}", base, "--", path).strip())


def read_stage_tags() -> list[StageTag]:
    return parse_stage_tags(
        git("for-each-ref", f"--format={REF_FORMAT}", f"refs/tags/{ARTIFACT}#*")
    )


def all_tag_names() -> list[str]:
    return git("tag", "--list", f"{ARTIFACT}[@#]*").split()


# --- the release: image and lineage -----------------------------------------------------


@dataclass(frozen=True)
class Image:
    name: str  # the repository, without a tag: ghcr.io/owner/repo
    digest: str


@dataclass(frozen=True)
class Lineage:
    model_md5: str
    data_md5: str
    metrics: tuple[tuple[str, str], ...]


def image_from_notes(notes: str, tag: str) -> Image:
    """The image the release recorded: the last `Image:` line (a re-run records the
    digest it pushed again)."""
    found = IMAGE_LINE.findall(notes)
    if not found:
        raise PromotionError(
            "No image digest",
            f"the release {tag} records no image digest (no line `Image: NAME:TAG@sha256:...` "
            "in its notes): its image was never pushed, so there is nothing to promote. "
            "Re-run the release workflow for that commit.",
        )
    ref, digest = found[-1]
    last = ref.rsplit("/", 1)
    name = ref.rsplit(":", 1)[0] if ":" in last[-1] else ref
    return Image(name=name, digest=digest)


def lineage_from_notes(notes: str) -> Lineage:
    """Model and data versions and the metrics table, as release_info.notes writes them."""
    model, data = MODEL_LINE.search(notes), DATA_LINE.search(notes)
    metrics = []
    lines = notes.splitlines()
    if "| metric | value |" in lines:
        for line in lines[lines.index("| metric | value |") + 2 :]:
            row = METRIC_ROW.match(line)
            if row is None:
                break
            metrics.append((row["name"], row["value"]))
    return Lineage(
        model_md5=model["md5"] if model else "unknown",
        data_md5=data["md5"] if data else "unknown",
        metrics=tuple(metrics),
    )


# --- the overlay --------------------------------------------------------------------------


def overlay_path(stage: str) -> Path:
    return OVERLAYS / stage / "kustomization.yaml"


def set_image(text: str, image: Image, entry: str = IMAGE_ENTRY) -> str:
    """The kustomization with `entry`'s newName and digest under `images:` set to `image`;
    every other line (comments, order, other images) is kept as it is."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == "images:"), None)
    item = re.compile(rf"^(\s*)- name: {re.escape(entry)}\s*$")
    head = None
    if start is not None:
        head = next((i for i in range(start + 1, len(lines)) if item.match(lines[i])), None)
    if head is None:
        raise PromotionError(
            "Overlay without the image",
            f"images: has no entry '- name: {entry}': the overlay must name the image to "
            "set (docs/deploy.md)",
        )
    entry_line = item.match(lines[head])
    assert entry_line is not None  # `head` is the line it matched
    indent = len(entry_line.group(1)) + 2
    field = re.compile(rf"^ {{{indent}}}(?P<key>newName|digest|newTag):")
    seen = set()
    for i in range(head + 1, len(lines)):
        found = field.match(lines[i])
        if found is None:
            if lines[i].startswith(" " * indent) and lines[i].strip():
                continue
            break
        key = found["key"]
        if key == "newTag":
            raise PromotionError(
                "Overlay with a tag",
                f"the image entry '{entry}' has a newTag: an overlay names its image by "
                "digest only",
            )
        value = image.name if key == "newName" else image.digest
        lines[i] = f"{' ' * indent}{key}: {value}\n"
        seen.add(key)
    if seen != {"newName", "digest"}:
        raise PromotionError(
            "Overlay without the image",
            f"the image entry '{entry}' must have both newName and digest; it has "
            f"{', '.join(sorted(seen)) or 'neither'}",
        )
    return "".join(lines)


# --- the pull request ---------------------------------------------------------------------


def pr_branch(stage: str) -> str:
    return f"promote/{stage}"


def pr_title(stage: str, version: str) -> str:
    return f"Promote {ARTIFACT} {version} to {stage}"


def pr_body(
    *, stage: str, version: str, image: Image, lineage: Lineage, stage_tag: str, release_url: str
) -> str:
    lines = [
        f"Promotes **{ARTIFACT} {version}** to **{stage}**: "
        f"`{overlay_path(stage)}` now names its image by digest.",
        "",
        f"- model version: {version} (md5 of model.onnx: `{lineage.model_md5}`)",
        f"- data version (md5 of the raw data): `{lineage.data_md5}`",
        f"- image: `{image.name}@{image.digest}`",
        f"- release: {release_url}",
        f"- stage tag: `{stage_tag}`",
        "",
    ]
    if lineage.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in lineage.metrics]
        lines.append("")
    lines += [
        "Merging this pull request is the deployment: the GitOps controller syncs the overlay "
        "(docs/deploy.md). Reverting the merge rolls it back.",
        f"The branch belongs to the promote workflow: the next promotion to {stage} replaces it.",
    ]
    return "\n".join(lines) + "\n"


# --- GitHub ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHub:
    api_url: str
    repository: str
    token: str

    def call(self, method: str, path: str, payload: dict[str, object] | None = None) -> object:
        url = f"{self.api_url.rstrip('/')}/repos/{self.repository}{path}"
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            url,
            method=method,
            data=None if payload is None else json.dumps(payload).encode(),
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def release(self, tag: str) -> dict[str, str] | None:
        """The release of `tag`, or None when there is none."""
        try:
            found = self.call("GET", f"/releases/tags/{urllib.parse.quote(tag, safe='')}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return found if isinstance(found, dict) else None

    def open_or_update(self, branch: str, base: str, title: str, body: str) -> tuple[str, int]:
        """Update the open pull request from `branch` into `base`, or open one."""
        owner = self.repository.split("/", 1)[0]
        query = urllib.parse.urlencode(
            {"head": f"{owner}:{branch}", "base": base, "state": "open", "per_page": 100}
        )
        pulls = self.call("GET", f"/pulls?{query}")
        for pull in pulls if isinstance(pulls, list) else []:
            self.call("PATCH", f"/pulls/{pull['number']}", {"title": title, "body": body})
            return "updated", int(pull["number"])
        created = self.call(
            "POST", "/pulls", {"title": title, "head": branch, "base": base, "body": body}
        )
        assert isinstance(created, dict)
        return "opened", int(created["number"])


def repository_from_origin() -> str:
    url = git("remote", "get-url", "origin").strip()
    match = re.search(r"github\.com[:/](?P<repo>[^/]+/[^/]+?)(?:\.git)?$", url)
    if match is None:
        raise PromotionError(
            "Unknown repository",
            f"origin is {url!r}, not a GitHub repository; set GITHUB_REPOSITORY=owner/name",
        )
    return match["repo"]


def github_from_env() -> GitHub:
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token and shutil.which("gh"):
        token = subprocess.run(
            ["gh", "auth", "token"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return GitHub(
        api_url=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        repository=os.environ.get("GITHUB_REPOSITORY") or repository_from_origin(),
        token=token,
    )


# --- the promotion, checked ----------------------------------------------------------------


@dataclass(frozen=True)
class Promotion:
    version: str
    stage: str
    commit: str  # the commit the version tag names, which the stage tag names too
    image: Image
    lineage: Lineage
    release_url: str
    # The stage tags as plan read them, once for the order check and the tag to add.
    stage_tags: tuple[StageTag, ...]


def check_order(
    stage: str,
    version: str,
    image: Image,
    *,
    commit: str,
    base: str,
    stage_tags: Iterable[StageTag],
) -> None:
    """The stage before `stage` has deployed the version's image (`order_problem`), and
    GTO has not taken the version (at `commit`) out of it since (`withdrawal`)."""
    before = previous_stage(stage)
    if before is None:
        return
    ran = overlay_named(base, before, image.digest)
    problem = order_problem(stage, version, image, base=base, ran=ran)
    if problem:
        raise PromotionError("Stage order", problem)
    withdrawn = withdrawal(before, commit, stage_tags)
    if withdrawn is not None:
        raise PromotionError(
            "Stage order",
            f"input stage is {stage!r} for version {version}, which was taken out of "
            f"{before}: {withdrawn.name} unassigns it there. Promote it to {before} again "
            f"(make promote VERSION={version} STAGE={before}) before {stage}.",
        )


def version_commit(version: str) -> str:
    tag = f"{ARTIFACT}@{version}"
    for model_tag in read_model_tags():
        if model_tag.name == tag:
            return model_tag.commit
    raise PromotionError(
        "Unreleased version",
        f"input version is {version!r}: no tag {tag} in this repository, so it was never "
        "released (the release workflow tags each model version it ships)",
    )


def plan(version: str, stage: str, github: GitHub, base: str) -> Promotion:
    """Everything a promotion needs, checked; nothing is changed. `base` is the default
    branch's commit, whose overlays the order of stages is read from."""
    check_inputs(version, stage)
    check_base(base)
    commit = version_commit(version)
    tag = f"{ARTIFACT}@{version}"
    release = github.release(tag)
    if release is None:
        raise PromotionError(
            "Unreleased version",
            f"input version is {version!r}: the tag {tag} has no GitHub release in "
            f"{github.repository}, so no image digest was recorded; re-run the release workflow",
        )
    notes = release.get("body") or ""
    image = image_from_notes(notes, tag)
    stage_tags = tuple(read_stage_tags())
    check_order(stage, version, image, commit=commit, base=base, stage_tags=stage_tags)
    return Promotion(
        version=version,
        stage=stage,
        commit=commit,
        image=image,
        lineage=lineage_from_notes(notes),
        release_url=release.get("html_url") or tag,
        stage_tags=stage_tags,
    )


# --- changes ------------------------------------------------------------------------------


def push(refspec: str) -> None:
    """Push to origin with PUSH_TOKEN when it is set (a workflow's token), else with git's
    own credentials. Only a refspec that starts with + replaces what origin has: the
    stage's branch, never a tag."""
    options = []
    token = os.environ.get("PUSH_TOKEN", "")
    if token:
        auth = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        print(f"::add-mask::{auth}")
        options = ["-c", f"http.extraheader=AUTHORIZATION: basic {auth}"]
    subprocess.run(["git", *options, "push", "origin", refspec], check=True)


BOT = [
    "-c",
    "user.name=github-actions[bot]",
    "-c",
    "user.email=41898282+github-actions[bot]@users.noreply.github.com",
]


def commit_overlay(base: str, path: Path, text: str, message: str) -> str | None:
    """A commit on `base` whose only change is `path` set to `text`, made without touching
    the working tree or the index; None when `base` already has that text."""
    if git("show", f"{base}:{path.as_posix()}") == text:
        return None
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}

        def indexed(*args: str) -> str:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, check=True, env=env
            ).stdout

        indexed("read-tree", base)
        indexed("update-index", "--cacheinfo", f"100644,{blob},{path.as_posix()}")
        tree = indexed("write-tree").strip()
    return subprocess.run(
        ["git", *BOT, "commit-tree", tree, "-p", base, "-m", message],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def planned_stage_tag(promotion: Promotion) -> tuple[str, bool]:
    """The stage tag for the promotion, and whether it exists: the stage's current tag
    when it already names this version (a re-run adds none), else the next one."""
    now = current(promotion.stage, promotion.stage_tags)
    if now is not None and now.assigned and now.commit == promotion.commit:
        return now.name, True
    return stage_tag_name(promotion.stage, next_counter(all_tag_names())), False


def tag_stage(promotion: Promotion, name: str, *, exists: bool) -> None:
    if exists:
        print(f"{name} already assigns {ARTIFACT} {promotion.version} to {promotion.stage}")
        return
    subprocess.run(
        [
            "git",
            *BOT,
            "tag",
            "-a",
            name,
            promotion.commit,
            "-m",
            f"Promoting {ARTIFACT} {promotion.version} to {promotion.stage}",
            "-m",
            f"image: {promotion.image.name}@{promotion.image.digest}",
        ],
        check=True,
    )
    push(f"refs/tags/{name}")
    print(f"tagged {name} on {promotion.commit[:7]}")


def apply(promotion: Promotion, base: str, base_branch: str, github: GitHub) -> None:
    """`base` is the commit the promotion builds on, `base_branch` the branch its pull
    request merges into."""
    path = overlay_path(promotion.stage)
    edited = set_image(git("show", f"{base}:{path.as_posix()}"), promotion.image)
    title = pr_title(promotion.stage, promotion.version)
    commit = commit_overlay(base, path, edited, title)
    stage_tag, tagged = planned_stage_tag(promotion)
    if commit is None:
        print(
            f"::notice title=Already deployed::{path} on {base} already names "
            f"{promotion.image.name}@{promotion.image.digest}; no pull request"
        )
        tag_stage(promotion, stage_tag, exists=tagged)
        return
    branch = pr_branch(promotion.stage)
    # The branch belongs to the promotion: the next one replaces its commit.
    push(f"+{commit}:refs/heads/{branch}")
    body = pr_body(
        stage=promotion.stage,
        version=promotion.version,
        image=promotion.image,
        lineage=promotion.lineage,
        stage_tag=stage_tag,
        release_url=promotion.release_url,
    )
    verb, number = github.open_or_update(branch, base_branch, title, body)
    print(f"promote.py: {verb} pull request #{number} ({branch} into {base_branch})")
    # Last: a promotion whose branch or pull request failed leaves no stage tag, so GTO
    # never shows a stage change that has no pull request behind it.
    tag_stage(promotion, stage_tag, exists=tagged)


def verify_attestation(image: Image, repository: str) -> None:
    """`gh attestation verify` of the digest: built by `repository`'s release workflow."""
    subject = f"oci://{image.name}@{image.digest}"
    if shutil.which("gh") is None:
        raise PromotionError(
            "No gh",
            f"verifying {subject} needs the GitHub CLI (gh) on PATH; install it, or skip the "
            "check where attestation is off (VERIFY=false)",
        )
    workflow = f"{repository}/{RELEASE_WORKFLOW}"
    command = ["gh", "attestation", "verify", subject, "--repo", repository]
    verified = subprocess.run([*command, "--signer-workflow", workflow])
    if verified.returncode != 0:
        raise PromotionError(
            "Attestation",
            f"{subject} has no build provenance attestation signed by {workflow} that verifies "
            "(see gh's output above): it is not an image the release workflow built",
        )


# --- command line ------------------------------------------------------------------------


def write_outputs(values: dict[str, str]) -> None:
    with Path(os.environ.get("GITHUB_OUTPUT", "/dev/stdout")).open("a") as out:
        for key, value in values.items():
            out.write(f"{key}={value}\n")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="promote.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "apply"):
        command = commands.add_parser(name)
        command.add_argument("--version", required=True)
        command.add_argument("--stage", required=True)
        command.add_argument(
            "--base",
            default="origin/main",
            help="the default branch's commit: the order of stages is read from its "
            "overlays' history (and apply's pull request builds on it)",
        )
    applying = commands.choices["apply"]
    applying.add_argument(
        "--base-branch", default="main", help="the branch apply's pull request merges into"
    )
    applying.add_argument(
        "--expect-digest", default="", help="fail unless the release names this digest"
    )
    applying.add_argument("--edit-only", action="store_true", help="only edit the overlay here")
    applying.add_argument(
        "--verify-attestation", action="store_true", help="gh attestation verify the digest first"
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    check_inputs(args.version, args.stage)
    github = github_from_env()
    promotion = plan(args.version, args.stage, github, args.base)
    image = promotion.image
    print(f"{ARTIFACT} {promotion.version} -> {promotion.stage}: {image.name}@{image.digest}")
    if args.command == "check":
        write_outputs({"image": image.name, "digest": image.digest, "commit": promotion.commit})
        return
    if args.expect_digest and args.expect_digest != image.digest:
        raise PromotionError(
            "Digest changed",
            f"the release now names {image.digest}, not the verified {args.expect_digest}",
        )
    if args.verify_attestation:
        verify_attestation(image, github.repository)
    if args.edit_only:
        path = overlay_path(promotion.stage)
        path.write_text(set_image(path.read_text(), image))
        print(f"edited {path}; nothing committed, tagged or pushed")
        return
    apply(promotion, args.base, args.base_branch, github)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except PromotionError as error:
        print(f"::error title={error.title}::{error}")
        return 2
    except urllib.error.URLError as error:
        print(f"::error title=GitHub API::{error}")
        return 1
    except subprocess.CalledProcessError as error:
        # Not the command line: a push's carries the token's header. A push's output went
        # to the log as it ran; a captured command's (git show, git rev-parse) is here.
        captured = (error.stderr or "").strip()
        shown = f": {captured.splitlines()[-1]}" if captured else " (see its output above)"
        print(f"::error title={error.cmd[0]}::exited {error.returncode}{shown}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
