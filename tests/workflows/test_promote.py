"""promote.py: input rules, GTO stage tags, the order of stages, the digest from the
release notes, the overlay edit and the pull request body; then whole promotions in a
git repository with a bare origin and the stand-in GitHub API, read back with GTO."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gto.tag as gto_tag
import pytest
import yaml

from tests.availability import require_tool
from tests.github_api import IssuesState, github_issues_api
from tests.tools import run_tool

from .harness import REPO_ROOT, SCRIPTS, load_script, load_workflow
from .test_scripts import GIT_ENV, metadata

promote = load_script("promote")
release_info = load_script("release_info")

IMAGE = "ghcr.io/acme/tabml-models"
DIGEST = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64
MODEL_MD5 = "a" * 32
REPOSITORY = "acme/tabml-models"
SIGNER = f"{REPOSITORY}/.github/workflows/release.yml"
TOKEN = "ghs_promote_test"


def release_notes(version: str, digest: str | None = DIGEST) -> str:
    """The notes release.yml publishes: release_info.notes, then the image line."""
    notes = release_info.notes(metadata(MODEL_MD5), f"model@{version}")
    if digest is not None:
        notes += f"\nImage: `{IMAGE}:{version}@{digest}`\n"
    return str(notes)


# --- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.2.0", "v1.2", "model@v1.2.0", "v01.2.0", "", "v1.2.0 "])
def test_a_version_that_is_not_vxyz_is_refused_naming_input_value_and_rule(version: str) -> None:
    with pytest.raises(promote.PromotionError) as raised:
        promote.check_inputs(version, "staging")
    assert f"input version is {version!r}: it must be a model version vX.Y.Z" in str(raised.value)


@pytest.mark.parametrize("stage", ["prod", "Staging", "dev", ""])
def test_a_stage_that_is_not_known_is_refused_naming_the_stages(stage: str) -> None:
    with pytest.raises(promote.PromotionError) as raised:
        promote.check_inputs("v1.2.0", stage)
    message = str(raised.value)
    assert message == f"input stage is {stage!r}: it must be one of staging, production"


# --- stage tags -----------------------------------------------------------------------------


def listing(*entries: tuple[str, str, str]) -> str:
    return "".join(f"{name}\x1f{obj}\x1f{peeled}\n" for name, obj, peeled in entries)


def test_stage_tags_are_parsed_with_their_commit_and_unassignments() -> None:
    tags = promote.parse_stage_tags(
        listing(
            ("model#staging#1", "t1", "c1"),
            ("model#production#2", "t2", "c1"),
            ("model#staging!#3", "t3", "c1"),
            ("model@v1.0.0", "t0", "c1"),
            ("other#staging#4", "t4", "c2"),
            ("model#staging", "t5", "c2"),  # GTO's simple form: no counter, not ours
        )
    )
    assert [(t.name, t.stage, t.counter, t.assigned, t.commit) for t in tags] == [
        ("model#staging#1", "staging", 1, True, "c1"),
        ("model#production#2", "production", 2, True, "c1"),
        ("model#staging!#3", "staging", 3, False, "c1"),
    ]


def test_the_counter_follows_every_counted_tag_of_the_model() -> None:
    assert promote.next_counter([]) == 1
    assert promote.next_counter(["model@v1.0.0", "model@v1.1.0"]) == 1
    names = ["model@v1.0.0", "model#staging#1", "model#production#2", "model#staging!#5"]
    assert promote.next_counter(names) == 6
    assert promote.stage_tag_name("staging", 6) == "model#staging#6"


def test_our_tag_names_are_what_gto_parses() -> None:
    """GTO's own parser (gto.tag.parse_name) reads the names promote.py writes, and
    release.yml's version tags, as the same artifact."""
    assert gto_tag.parse_name("model#production#7") == {
        "name": "model",
        "stage": "production",
        "action": gto_tag.Action.ASSIGN,
        "counter": 7,
    }
    assert gto_tag.parse_name("model@v1.2.0")["name"] == "model"
    for stage in promote.STAGES:
        assert promote.STAGE_TAG.match(promote.stage_tag_name(stage, 3))
        assert gto_tag.parse_name(promote.stage_tag_name(stage, 3))["stage"] == stage


def tag(stage: str, counter: int, commit: str, *, assigned: bool = True) -> Any:
    name = f"model#{stage}{'' if assigned else '!'}#{counter}"
    return promote.StageTag(name, stage, counter, assigned, commit)


def test_staging_takes_any_released_version() -> None:
    image = promote.Image(IMAGE, DIGEST)
    assert promote.previous_stage("staging") is None
    assert promote.order_problem("staging", "v1.0.0", image, base="origin/main", ran=False) is None


def test_production_takes_only_a_version_whose_image_staging_has_deployed() -> None:
    image = promote.Image(IMAGE, DIGEST)
    assert promote.previous_stage("production") == "staging"
    assert promote.order_problem("production", "v1.0.0", image, base="HEAD", ran=True) is None
    problem = promote.order_problem("production", "v1.1.0", image, base="HEAD", ran=False)
    assert problem is not None
    assert "input stage is 'production' for version v1.1.0, which has never been in staging" in (
        problem
    )
    assert (
        f"deploy/overlays/staging/kustomization.yaml on HEAD has never named its image {DIGEST}"
        in problem
    )
    assert "make promote VERSION=v1.1.0 STAGE=staging" in problem
    assert "merge that pull request (promote/staging) first" in problem


@pytest.fixture
def overlays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A repository whose staging overlay names no image by digest yet; git runs in it."""
    path = tmp_path / "overlays"
    run_tool(["git", "init", "-q", "-b", "main", str(path)])
    shutil.copytree(REPO_ROOT / "deploy", path / "deploy")
    monkeypatch.chdir(path)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)

    def commit(digest: str, message: str) -> None:
        """Commit the work tree, the staging overlay's image set to `digest` if one."""
        overlay = promote.overlay_path("staging")
        if digest:
            overlay.write_text(promote.set_image(overlay.read_text(), promote.Image(IMAGE, digest)))
        run_tool(["git", "add", "-A"])
        run_tool(["git", "commit", "-q", "-m", message])

    commit("", "Deploy")
    return path, commit


def test_a_promotion_counts_once_merged_into_the_base(overlays: Any) -> None:
    path, commit = overlays
    assert not promote.overlay_named("main", "staging", DIGEST)
    # The promotion's branch: its pull request is open, not merged.
    run_tool(["git", "switch", "-q", "-c", "promote/staging"], cwd=path)
    commit(DIGEST, "Promote model v1.0.0 to staging")
    run_tool(["git", "switch", "-q", "main"], cwd=path)
    assert promote.overlay_named("promote/staging", "staging", DIGEST)
    assert not promote.overlay_named("main", "staging", DIGEST)
    # Merged as a squash (a new commit on main), then replaced by the next version: the
    # version has run in staging all the same.
    commit(DIGEST, "Promote model v1.0.0 to staging (#1)")
    commit(OTHER_DIGEST, "Promote model v1.1.0 to staging (#2)")
    assert promote.overlay_named("main", "staging", DIGEST)
    assert promote.overlay_named("main", "staging", OTHER_DIGEST)
    # Another stage's overlay naming it is not a stay in staging.
    assert not promote.overlay_named("main", "production", DIGEST)


def test_a_shallow_clone_cannot_tell_and_says_so(
    overlays: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, commit = overlays
    commit(DIGEST, "Promote model v1.0.0 to staging (#1)")
    (path / "later.txt").write_text("later\n")
    commit("", "Later")
    shallow = tmp_path / "shallow"
    run_tool(["git", "clone", "-q", "--depth", "1", f"file://{path}", str(shallow)])
    monkeypatch.chdir(shallow)
    with pytest.raises(promote.PromotionError, match="history is shallow") as raised:
        promote.overlay_named("HEAD", "staging", DIGEST)
    assert "git fetch --unshallow" in str(raised.value)
    assert raised.value.title == "Shallow clone"


def test_an_unassignment_that_is_the_latest_tag_on_the_commit_withdraws_it() -> None:
    assigned, withdrawn = tag("staging", 1, "c1"), tag("staging", 2, "c1", assigned=False)
    assert promote.withdrawal("staging", "c1", [assigned, withdrawn]) == withdrawn
    # Promoted to staging again since: back in.
    again = tag("staging", 3, "c1")
    assert promote.withdrawal("staging", "c1", [assigned, withdrawn, again]) is None
    # Another version's or another stage's unassignment is not this one's.
    assert promote.withdrawal("staging", "c2", [assigned, withdrawn]) is None
    assert promote.withdrawal("production", "c1", [assigned, withdrawn]) is None


def test_the_current_tag_of_a_stage_is_its_highest_counter() -> None:
    tags = [tag("staging", 1, "c1"), tag("production", 2, "c1"), tag("staging", 3, "c2")]
    assert promote.current("staging", tags).name == "model#staging#3"
    assert promote.current("production", tags).name == "model#production#2"
    assert promote.current("staging", []) is None


# --- the release notes ------------------------------------------------------------------------


def test_the_image_is_the_digest_release_yml_recorded_in_the_notes() -> None:
    image = promote.image_from_notes(release_notes("v1.2.0"), "model@v1.2.0")
    assert image == promote.Image(IMAGE, DIGEST)
    # A later commit's image tag (vX.Y.Z-<sha>), a registry with a port, a re-run's line.
    notes = release_notes("v1.2.0") + f"Image: `localhost:5000/a/b:v1.2.0-abc1234@{OTHER_DIGEST}`\n"
    assert promote.image_from_notes(notes, "t") == promote.Image("localhost:5000/a/b", OTHER_DIGEST)


@pytest.mark.parametrize(
    "line",
    ["", f"Image: `{IMAGE}:v1.2.0@sha256:123`", f"Image: `{IMAGE}:v1.2.0`", f"Image: {DIGEST}"],
)
def test_notes_without_a_full_digest_name_no_image(line: str) -> None:
    notes = release_notes("v1.2.0", digest=None) + line
    with pytest.raises(promote.PromotionError) as raised:
        promote.image_from_notes(notes, "model@v1.2.0")
    assert "the release model@v1.2.0 records no image digest" in str(raised.value)


def test_the_lineage_is_read_back_from_the_notes_release_info_writes() -> None:
    lineage = promote.lineage_from_notes(release_notes("v1.2.0"))
    assert lineage.model_md5 == MODEL_MD5
    assert lineage.data_md5 == "d" * 32
    assert lineage.metrics == (("f1", "0.97561"), ("test_rows", "114"))


# --- the overlay ------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", promote.STAGES)
def test_the_overlay_edit_changes_the_image_lines_only(stage: str) -> None:
    path = REPO_ROOT / promote.overlay_path(stage)
    before = path.read_text()
    after = promote.set_image(before, promote.Image(IMAGE, DIGEST))
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [
        ("    newName: ghcr.io/example/tabml", f"    newName: {IMAGE}"),
        (f"    digest: {yaml.safe_load(before)['images'][0]['digest']}", f"    digest: {DIGEST}"),
    ]
    assert promote.set_image(after, promote.Image(IMAGE, DIGEST)) == after


@pytest.mark.parametrize("stage", promote.STAGES)
def test_the_edited_overlay_renders_the_promoted_image(stage: str, tmp_path: Path) -> None:
    kubectl = require_tool("kubectl")
    shutil.copytree(REPO_ROOT / "deploy", tmp_path / "deploy")
    path = tmp_path / promote.overlay_path(stage)
    path.write_text(promote.set_image(path.read_text(), promote.Image(IMAGE, DIGEST)))
    rendered = run_tool([kubectl, "kustomize", str(path.parent)]).stdout
    [deployment] = [d for d in yaml.safe_load_all(rendered) if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{IMAGE}@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("resources: []\n", "images: has no entry '- name: tabml-serve'"),
        ("images:\n  - name: other\n    digest: x\n", "images: has no entry"),
        (
            "images:\n  - name: tabml-serve\n    newName: a\n    newTag: v1\n",
            "has a newTag: an overlay names its image by digest only",
        ),
        ("images:\n  - name: tabml-serve\n    newName: a\n", "must have both newName and digest"),
    ],
)
def test_an_overlay_without_an_image_by_digest_is_refused(text: str, rule: str) -> None:
    with pytest.raises(promote.PromotionError) as raised:
        promote.set_image(text, promote.Image(IMAGE, DIGEST))
    assert rule in str(raised.value)


def test_the_pull_request_body_records_the_lineage() -> None:
    body = promote.pr_body(
        stage="production",
        version="v1.2.0",
        image=promote.Image(IMAGE, DIGEST),
        lineage=promote.lineage_from_notes(release_notes("v1.2.0")),
        stage_tag="model#production#4",
        release_url="https://github.com/acme/tabml-models/releases/tag/model%40v1.2.0",
    )
    assert "Promotes **model v1.2.0** to **production**" in body
    assert "`deploy/overlays/production/kustomization.yaml`" in body
    assert f"- model version: v1.2.0 (md5 of model.onnx: `{MODEL_MD5}`)" in body
    assert f"- data version (md5 of the raw data): `{'d' * 32}`" in body
    assert f"- image: `{IMAGE}@{DIGEST}`" in body
    assert "- stage tag: `model#production#4`" in body
    assert "| f1 | 0.97561 |" in body and "| test_rows | 114 |" in body
    assert promote.pr_title("production", "v1.2.0") == "Promote model v1.2.0 to production"


def test_the_workflow_is_dispatched_only_and_writes_in_the_stage_environment() -> None:
    workflow = load_workflow("promote.yml")
    # PyYAML reads the key `on` as True.
    assert list(workflow[True]) == ["workflow_dispatch"], "no push, pull request or fork"
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    assert inputs["stage"]["options"] == list(promote.STAGES)
    assert inputs["version"]["required"] and inputs["stage"]["required"]
    jobs = workflow["jobs"]
    assert "environment" not in jobs["check"], "inputs are checked before any environment"
    # Production's required reviewers hold the job that writes, after the checks.
    assert jobs["promote"]["needs"] == "check"
    assert jobs["promote"]["environment"] == "${{ inputs.stage }}"
    assert jobs["promote"]["env"]["BASE_BRANCH"] == "${{ github.event.repository.default_branch }}"
    # Attestation is verified under the same rule release.yml attests under.
    release = load_workflow("release.yml")["jobs"]["release"]["steps"]
    [attest] = [step for step in release if "attest-build-provenance" in step.get("uses", "")]
    [verify] = [step for step in jobs["check"]["steps"] if "gh attestation" in step.get("run", "")]
    rule = " ".join(attest["if"].replace("steps.push.outputs.digest != '' && ", "").split())
    assert rule.startswith("(") and rule.endswith(")")
    assert " ".join(verify["if"].split()) == rule[1:-1], (
        verify["if"],
        attest["if"],
    )


# --- whole promotions in a repository ----------------------------------------------------------


@dataclass
class Repo:
    path: Path
    origin: Path
    api: str
    state: IssuesState

    def git(self, *args: str) -> str:
        return run_tool(["git", *args], cwd=self.path, env={**os.environ, **GIT_ENV}).stdout

    def origin_refs(self, pattern: str) -> list[str]:
        return run_tool(
            ["git", "--git-dir", str(self.origin), "for-each-ref", "--format=%(refname)", pattern]
        ).stdout.split()

    def promote(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            **GIT_ENV,
            "GITHUB_API_URL": self.api,
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_TOKEN": TOKEN,
        }
        env.pop("GITHUB_OUTPUT", None)
        return run_tool(
            [sys.executable, str(SCRIPTS / "promote.py"), *args],
            cwd=self.path,
            env=env,
            check=False,
        )

    def merge(self, branch: str) -> None:
        """Merge `branch`'s pull request in origin, as GitHub's merge button does."""
        self.git("fetch", "-q", "origin")
        self.git("switch", "-q", "--detach", "origin/main")
        self.git("merge", "-q", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
        self.git("push", "-q", "origin", "HEAD:refs/heads/main")
        self.git("switch", "-q", "main")
        self.git("fetch", "-q", "origin")

    def release(self, version: str, digest: str | None = DIGEST) -> None:
        """Tag the current commit model@<version> and publish its release, as release.yml."""
        self.git(
            "tag", "-a", f"model@{version}", "-m", "Registering", "-m", f"model-md5: {MODEL_MD5}"
        )
        self.git("push", "-q", "origin", f"refs/tags/model@{version}")
        self.state.releases[f"model@{version}"] = {
            "body": release_notes(version, digest),
            "html_url": f"https://github.com/{REPOSITORY}/releases/tag/model%40{version}",
        }


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    path, origin = tmp_path / "repo", tmp_path / "origin.git"
    run_tool(["git", "init", "-q", "-b", "main", str(path)])
    shutil.copytree(REPO_ROOT / "deploy", path / "deploy")
    # What `make promote` runs: the Makefile and the scripts.
    shutil.copy2(REPO_ROOT / "Makefile", path / "Makefile")
    (path / ".github").mkdir()
    shutil.copytree(SCRIPTS, path / ".github" / "scripts")
    run_tool(["git", "init", "-q", "--bare", str(origin)])
    with github_issues_api(REPOSITORY, TOKEN, git_dir=origin) as (api, state):
        repo = Repo(path, origin, api, state)
        repo.git("remote", "add", "origin", str(origin))
        repo.git("add", "-A")
        repo.git("commit", "-q", "-m", "Deploy")
        repo.git("push", "-q", "origin", "main")
        repo.git("fetch", "-q", "origin")
        yield repo


def unchanged(repo: Repo, before: tuple[list[str], list[str], int]) -> bool:
    now = (repo.origin_refs("refs/"), repo.git("tag").split(), len(repo.state.pulls))
    return now == before and repo.git("status", "--porcelain") == ""


def snapshot(repo: Repo) -> tuple[list[str], list[str], int]:
    return repo.origin_refs("refs/"), repo.git("tag").split(), len(repo.state.pulls)


def test_promotions_to_staging_then_production(repo: Repo) -> None:
    repo.release("v1.0.0")
    released = repo.git("rev-parse", "HEAD").strip()
    # A later commit on main, where the pull requests build.
    (repo.path / "notes.txt").write_text("later\n")
    repo.git("add", "notes.txt")
    repo.git("commit", "-q", "-m", "Later")
    repo.git("push", "-q", "origin", "main")
    repo.git("fetch", "-q", "origin")

    staged = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert staged.returncode == 0, staged.stdout + staged.stderr
    assert "opened pull request #1 (promote/staging into main)" in staged.stdout
    # The stage tag names the version's commit, not the branch's.
    assert repo.git("rev-parse", "model#staging#1^{commit}").strip() == released
    assert repo.origin_refs("refs/tags/") == ["refs/tags/model#staging#1", "refs/tags/model@v1.0.0"]
    # The branch: one commit on main that changes the staging overlay's image only.
    branch = "refs/heads/promote/staging"
    assert (
        repo.git("rev-parse", "origin/main").strip()
        == run_tool(
            ["git", "--git-dir", str(repo.origin), "rev-parse", f"{branch}^"]
        ).stdout.strip()
    )
    diff = run_tool(["git", "--git-dir", str(repo.origin), "diff", "main", branch]).stdout
    assert "deploy/overlays/staging/kustomization.yaml" in diff
    added = [line for line in diff.splitlines() if line[:1] == "+" and line[:3] != "+++"]
    assert added == [f"+    newName: {IMAGE}", f"+    digest: {DIGEST}"]
    assert repo.git("status", "--porcelain") == "", "the working tree is not touched"
    [pull] = repo.state.pulls
    assert pull["title"] == "Promote model v1.0.0 to staging"
    assert pull["head"] == {"ref": "promote/staging"} and pull["base"] == {"ref": "main"}
    assert f"md5 of model.onnx: `{MODEL_MD5}`" in pull["body"]
    assert f"`{IMAGE}@{DIGEST}`" in pull["body"] and "| f1 | 0.97561 |" in pull["body"]

    # Again: the same tag stays, the pull request is updated.
    again = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "model#staging#1 already assigns model v1.0.0 to staging" in again.stdout
    assert "updated pull request #1" in again.stdout and len(repo.state.pulls) == 1

    # Its staging pull request is open, not merged: staging has not deployed it.
    before = snapshot(repo)
    waiting = repo.promote("apply", "--version", "v1.0.0", "--stage", "production")
    assert waiting.returncode == 2
    assert "::error title=Stage order::input stage is 'production' for version v1.0.0" in (
        waiting.stdout
    )
    assert "merge that pull request (promote/staging) first" in waiting.stdout
    assert unchanged(repo, before)
    repo.merge("promote/staging")

    produced = repo.promote("apply", "--version", "v1.0.0", "--stage", "production")
    assert produced.returncode == 0, produced.stdout + produced.stderr
    assert repo.git("rev-parse", "model#production#2^{commit}").strip() == released
    assert [p["head"]["ref"] for p in repo.state.pulls] == ["promote/staging", "promote/production"]

    # GTO reads the tags: the version and where it is.
    gto = Path(sys.executable).parent / "gto"  # a dev dependency
    shown = json.loads(run_tool([str(gto), "show", "--json"], cwd=repo.path).stdout)
    assert shown["model"]["version"] == "v1.0.0"
    assert shown["model"]["stage"] == {"production": "v1.0.0", "staging": "v1.0.0"}
    history = run_tool([str(gto), "history", "model", "--plain"], cwd=repo.path).stdout
    assert "model#staging#1" in history and "model#production#2" in history


def test_production_without_staging_fails_and_changes_nothing(repo: Repo) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "production")
    assert run.returncode == 2
    assert "::error title=Stage order::input stage is 'production' for version v1.0.0" in run.stdout
    assert "never been in staging" in run.stdout
    assert unchanged(repo, before)


def test_a_version_taken_out_of_staging_fails_and_changes_nothing(repo: Repo) -> None:
    """Merged into staging, then unassigned there with GTO (`gto deprecate`): production
    refuses it until it is promoted to staging again."""
    repo.release("v1.0.0")
    staged = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert staged.returncode == 0, staged.stdout + staged.stderr
    repo.merge("promote/staging")
    repo.git("tag", "-a", "model#staging!#2", "model@v1.0.0^{commit}", "-m", "Unassigning")
    repo.git("push", "-q", "origin", "refs/tags/model#staging!#2")
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "production")
    assert run.returncode == 2
    assert (
        "::error title=Stage order::input stage is 'production' for version v1.0.0, which was "
        "taken out of staging: model#staging!#2 unassigns it there"
    ) in run.stdout
    assert unchanged(repo, before)


def test_a_base_that_is_no_commit_here_fails_naming_it(repo: Repo) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    run = repo.promote("check", "--version", "v1.0.0", "--stage", "staging", "--base", "nope")
    assert run.returncode == 2
    assert "::error title=Bad input base::input base is 'nope': no such commit" in run.stdout
    assert unchanged(repo, before)


def test_an_unreleased_version_fails_and_changes_nothing(repo: Repo) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.1.0", "--stage", "staging")
    assert run.returncode == 2
    assert "::error title=Unreleased version::input version is 'v1.1.0': no tag model@v1.1.0" in (
        run.stdout
    )
    assert unchanged(repo, before)
    # Tagged, but its GitHub release was never published.
    repo.git("tag", "-a", "model@v1.1.0", "-m", "Registering")
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.1.0", "--stage", "staging")
    assert run.returncode == 2
    assert "the tag model@v1.1.0 has no GitHub release in acme/tabml-models" in run.stdout
    assert unchanged(repo, before)


def test_a_release_without_a_digest_fails_and_changes_nothing(repo: Repo) -> None:
    repo.release("v1.0.0", digest=None)
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert run.returncode == 2
    assert "::error title=No image digest::the release model@v1.0.0 records no image" in run.stdout
    assert unchanged(repo, before)


def test_a_digest_other_than_the_verified_one_fails_and_changes_nothing(repo: Repo) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    run = repo.promote(
        "apply", "--version", "v1.0.0", "--stage", "staging", "--expect-digest", OTHER_DIGEST
    )
    assert run.returncode == 2
    assert f"the release now names {DIGEST}, not the verified {OTHER_DIGEST}" in run.stdout
    assert unchanged(repo, before)


def test_edit_only_edits_the_overlay_here_and_nothing_else(repo: Repo) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging", "--edit-only")
    assert run.returncode == 0, run.stdout + run.stderr
    assert repo.git("status", "--porcelain").split() == [
        "M",
        "deploy/overlays/staging/kustomization.yaml",
    ]
    overlay = yaml.safe_load((repo.path / "deploy/overlays/staging/kustomization.yaml").read_text())
    assert overlay["images"] == [{"name": "tabml-serve", "newName": IMAGE, "digest": DIGEST}]
    assert (repo.origin_refs("refs/"), repo.git("tag").split()) == before[:2]
    assert repo.state.pulls == []


CHECK_ARGS = ("--version", "v1.0.0", "--stage", "staging")


def test_check_writes_the_digest_and_changes_nothing(repo: Repo, tmp_path: Path) -> None:
    repo.release("v1.0.0")
    before = snapshot(repo)
    output = tmp_path / "output"
    output.write_text("")
    env = {**os.environ, "GITHUB_API_URL": repo.api, "GITHUB_REPOSITORY": REPOSITORY}
    run = run_tool(
        [sys.executable, str(SCRIPTS / "promote.py"), "check", *CHECK_ARGS],
        cwd=repo.path,
        env={**env, "GITHUB_TOKEN": TOKEN, "GITHUB_OUTPUT": str(output)},
    )
    assert "model v1.0.0 -> staging" in run.stdout
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["image"] == IMAGE and outputs["digest"] == DIGEST
    assert unchanged(repo, before)


def gh_standin(bin_dir: Path, github: Path) -> Path:
    """A `gh` whose attestations are the subjects `github`/attestations.json lists."""
    bin_dir.mkdir()
    standin = Path(__file__).resolve().parent / "standins" / "standin.py"
    (bin_dir / "gh").write_text(
        f'#!/bin/sh\nexport STANDIN_GITHUB="{github}"\nexec python3 "{standin}" gh "$@"\n'
    )
    (bin_dir / "gh").chmod(0o755)
    return bin_dir


def make_promote(repo: Repo, gh_bin: Path, record: Path, *variables: str) -> Any:
    make = require_tool("make")
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": f"{gh_bin}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_API_URL": repo.api,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_TOKEN": TOKEN,
        "STANDIN_RECORD": str(record),
    }
    return run_tool([make, "promote", *variables], cwd=repo.path, env=env, check=False)


def test_make_promote_verifies_the_attestation_then_opens_the_pull_request(
    repo: Repo, tmp_path: Path
) -> None:
    repo.release("v1.0.0")
    github = tmp_path / "github"
    github.mkdir()
    gh_bin = gh_standin(tmp_path / "gh-bin", github)
    before = snapshot(repo)
    refused = make_promote(repo, gh_bin, tmp_path / "record", "VERSION=v1.0.0", "STAGE=staging")
    assert refused.returncode != 0
    assert "::error title=Attestation::" in refused.stdout
    assert f"oci://{IMAGE}@{DIGEST} has no build provenance attestation signed by {SIGNER}" in (
        refused.stdout
    )
    assert unchanged(repo, before)

    subject = {"subject": f"oci://{IMAGE}@{DIGEST}", "repo": REPOSITORY, "signer_workflow": SIGNER}
    (github / "attestations.json").write_text(json.dumps([subject]))
    done = make_promote(repo, gh_bin, tmp_path / "record", "VERSION=v1.0.0", "STAGE=staging")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"was attested by {SIGNER}" in done.stdout
    assert "opened pull request #1 (promote/staging into main)" in done.stdout
    assert repo.git("tag", "--list", "model#*").split() == ["model#staging#1"]


def test_make_promote_edit_only_without_verification(repo: Repo, tmp_path: Path) -> None:
    repo.release("v1.0.0")
    gh_bin = gh_standin(tmp_path / "gh-bin", tmp_path)
    variables = ("VERSION=v1.0.0", "STAGE=staging", "EDIT_ONLY=1", "VERIFY=false")
    run = make_promote(repo, gh_bin, tmp_path / "record", *variables)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "edited deploy/overlays/staging/kustomization.yaml" in run.stdout
    assert not (tmp_path / "record").exists(), "gh was not asked"
    assert repo.git("status", "--porcelain").split() == [
        "M",
        "deploy/overlays/staging/kustomization.yaml",
    ]
    assert repo.state.pulls == [] and repo.git("tag", "--list", "model#*") == ""


def test_a_stage_tag_in_origin_is_never_replaced(repo: Repo) -> None:
    """Another promotion pushed model#staging#1 since this clone fetched: the push of the
    same name is refused, origin's tag stays as it was, and the run fails."""
    repo.release("v1.0.0")
    repo.git("tag", "-a", "model#staging#1", "-m", "Promoted elsewhere")
    repo.git("push", "-q", "origin", "refs/tags/model#staging#1")
    theirs = repo.git("rev-parse", "model#staging#1").strip()
    repo.git("tag", "-d", "model#staging#1")
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert run.returncode == 1
    assert "::error title=git::exited" in run.stdout
    listed = run_tool(["git", "--git-dir", str(repo.origin), "rev-parse", "model#staging#1"])
    assert listed.stdout.strip() == theirs
    # The tag comes last: the pull request is open, and the run fails before any tag of
    # this promotion exists (a re-run takes the next number).
    assert len(repo.state.pulls) == 1


def test_a_failed_git_command_shows_what_git_said(repo: Repo) -> None:
    """The overlay a promotion edits is missing on the base branch: `git show` fails, and
    its captured message is in the error, not only its exit status."""
    repo.release("v1.0.0")
    repo.git("rm", "-q", "deploy/overlays/staging/kustomization.yaml")
    repo.git("commit", "-q", "-m", "No staging overlay")
    repo.git("push", "-q", "origin", "main")
    repo.git("fetch", "-q", "origin")
    run = repo.promote("apply", "--version", "v1.0.0", "--stage", "staging")
    assert run.returncode == 1
    assert re.search(
        r"::error title=git::exited 128: fatal: path 'deploy/overlays/staging/kustomization.yaml'"
        r" does not exist",
        run.stdout,
    ), run.stdout
    assert repo.state.pulls == []
