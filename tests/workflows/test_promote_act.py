"""promote.yml under act: the template committed with a bare origin, release.yml's results
made by hand (the annotated tag model@vX.Y.Z, a GitHub release whose notes record the
image digest, the digest's attestation), the stand-in GitHub API for releases and pull
requests and a stand-in `gh` for attestations. Refused promotions (a bad input,
production before staging or before its staging pull request is merged, an unreleased
version, a digest without an attestation) fail in the check job and change nothing;
staging, then production, each push promote/<stage> with the release's digest in the
overlay, tag the stage and open its pull request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.github_api import IssuesState, github_issues_api
from tests.integration.project import Project, commit_template

from .harness import REPOSITORY, ActRun, load_script, publish_origin, run_act
from .test_promote import DIGEST, IMAGE, OTHER_DIGEST, gh_standin, release_notes

pytestmark = pytest.mark.slow

TOKEN = "ghs_promote_test"
APP_CLIENT_ID = "Iv23promote"
APP_TOKEN = f"ghs_installation_{APP_CLIENT_ID}"  # what the stand-in action issues


def dispatch(version: str, stage: str, *, private: bool = False) -> dict[str, object]:
    owner, name = REPOSITORY.split("/")
    return {
        "inputs": {"version": version, "stage": stage},
        "repository": {
            "full_name": REPOSITORY,
            "name": name,
            "owner": {"login": owner},
            "default_branch": "main",
            "private": private,
        },
    }


def in_origin(bare: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), *args], capture_output=True, text=True, check=True
    ).stdout


def refs(bare: Path) -> list[str]:
    return in_origin(bare, "for-each-ref", "--format=%(refname)").split()


def release(project: Project, bare: Path, state: IssuesState, version: str, digest: str) -> None:
    """What release.yml leaves: the version tag on main's tip, pushed, and its release."""
    project.git("tag", "-a", f"model@{version}", "-m", f"Registering model model@{version}")
    project.git("push", "-q", "origin", f"refs/tags/model@{version}")
    state.releases[f"model@{version}"] = {
        "body": release_notes(version, digest),
        "html_url": f"https://github.com/{REPOSITORY}/releases/tag/model%40{version}",
    }


def test_promote_to_staging_then_production_and_every_refusal(tmp_path: Path) -> None:
    project = commit_template(tmp_path / "project")
    bare = tmp_path / "origin.git"
    publish_origin(project, bare)
    github = tmp_path / "github"
    github.mkdir()
    gh = gh_standin(tmp_path / "gh-bin", github)
    # v1.0.0's digest is attested; v1.1.0's release names a digest nobody attested.
    attested = [
        {
            "subject": f"oci://{IMAGE}@{DIGEST}",
            "repo": REPOSITORY,
            "signer_workflow": f"{REPOSITORY}/.github/workflows/release.yml",
        }
    ]
    (github / "attestations.json").write_text(json.dumps(attested))

    with github_issues_api(REPOSITORY, TOKEN, (APP_TOKEN,), bare) as (api, state):
        release(project, bare, state, "v1.0.0", DIGEST)
        released = project.git("rev-parse", "HEAD").strip()
        release(project, bare, state, "v1.1.0", OTHER_DIGEST)

        def promote(name: str, version: str, stage: str, **variables: str) -> ActRun:
            # A full-history checkout has the tags earlier runs pushed.
            project.git("fetch", "-q", str(bare), "+refs/tags/*:refs/tags/*")
            return run_act(
                project,
                "promote.yml",
                "workflow_dispatch",
                dispatch(version, stage),
                tmp_path / name,
                secrets={"GITHUB_TOKEN": TOKEN, "PROMOTE_APP_PRIVATE_KEY": "-----BEGIN test key"},
                env={"GITHUB_API_URL": api},
                path=[gh],
                variables=variables,
            )

        def snapshot() -> tuple[list[str], list[dict[str, object]]]:
            return refs(bare), [dict(pull) for pull in state.pulls]

        def refused(
            run: ActRun, before: tuple[list[str], list[dict[str, object]]], *messages: str
        ) -> None:
            assert run.returncode != 0
            assert run.step_failed("Check the inputs, the release and the order of stages") or (
                run.step_failed("Verify the image's build provenance (gh attestation verify)")
            ), run.explain()
            for message in messages:
                assert message in run.output, run.explain()
            assert not run.step_ran("Open or update the promotion pull request, tag the stage")
            assert snapshot() == before

        before = snapshot()
        refused(
            promote("bad-stage", "v1.0.0", "prod"),
            before,
            "input stage is 'prod': it must be one of staging, production",
        )
        refused(
            promote("production-first", "v1.0.0", "production"),
            before,
            "input stage is 'production' for version v1.0.0, which has never been in staging",
        )
        refused(
            promote("unreleased", "v2.0.0", "staging"),
            before,
            "input version is 'v2.0.0': no tag model@v2.0.0",
        )
        unattested = promote("unattested", "v1.1.0", "staging")
        refused(unattested, before, f"failed to fetch attestations for subject: oci://{IMAGE}")
        assert [call["verified"] for call in unattested.calls("gh-attestation")] == [False]

        staged = promote("staging", "v1.0.0", "staging")
        assert staged.returncode == 0, staged.explain()
        [verified] = staged.calls("gh-attestation")
        assert verified["args"] == [
            "attestation",
            "verify",
            f"oci://{IMAGE}@{DIGEST}",
            "--repo",
            REPOSITORY,
            "--signer-workflow",
            f"{REPOSITORY}/.github/workflows/release.yml",
        ]
        assert verified["verified"] is True
        assert "Promotion pull request without a GitHub App" in staged.output
        # The stage tag, on the released commit, in the origin.
        assert in_origin(bare, "rev-parse", "model#staging#1^{commit}").strip() == released
        # The branch changes the staging overlay's image; its digest is the release's.
        diff = in_origin(bare, "diff", "--name-only", "main", "promote/staging").split()
        assert diff == ["deploy/overlays/staging/kustomization.yaml"]
        overlay = yaml.safe_load(
            in_origin(bare, "show", "promote/staging:deploy/overlays/staging/kustomization.yaml")
        )
        promote_py = load_script("promote")
        notes = state.releases["model@v1.0.0"]["body"]
        recorded = promote_py.image_from_notes(notes, "model@v1.0.0")
        assert overlay["images"] == [
            {"name": "tabml-serve", "newName": recorded.name, "digest": recorded.digest}
        ]
        assert recorded.digest == DIGEST
        [pull] = state.pulls
        assert pull["title"] == "Promote model v1.0.0 to staging"
        assert pull["head"] == {"ref": "promote/staging"} and pull["base"] == {"ref": "main"}
        assert pull["opened_with"] == TOKEN
        assert f"- image: `{IMAGE}@{DIGEST}`" in pull["body"]
        assert "md5 of model.onnx: `" + "a" * 32 + "`" in pull["body"]
        assert "| f1 | 0.97561 |" in pull["body"]

        # Its staging pull request is open, not merged: staging has not deployed it.
        staged_only = snapshot()
        refused(
            promote("production-unmerged", "v1.0.0", "production"),
            staged_only,
            "input stage is 'production' for version v1.0.0, which has never been in staging",
            "merge that pull request (promote/staging) first",
        )
        # Merged, as GitHub's merge button does; the workflow checks out the default branch.
        project.git("fetch", "-q", str(bare), "promote/staging")
        project.git("merge", "-q", "--no-ff", "-m", "Merge promote/staging", "FETCH_HEAD")
        project.git("push", "-q", str(bare), "HEAD:refs/heads/main")

        # Production, with attestation off by the repository variable (a notice, no gh),
        # and a GitHub App, whose token opens the pull request (so that checks run on it).
        produced = promote(
            "production",
            "v1.0.0",
            "production",
            ATTEST_PROVENANCE="false",
            PROMOTE_APP_CLIENT_ID=APP_CLIENT_ID,
        )
        assert produced.returncode == 0, produced.explain()
        [app] = produced.calls("create-github-app-token")
        assert app["permissions"] == {"contents": "write", "pull-requests": "write"}
        assert "without a GitHub App" not in produced.output
        assert state.pulls[1]["opened_with"] == APP_TOKEN
        assert "Provenance not verified" in produced.output
        assert produced.calls("gh-attestation") == []
        assert in_origin(bare, "rev-parse", "model#production#2^{commit}").strip() == released
        assert [p["head"]["ref"] for p in state.pulls] == ["promote/staging", "promote/production"]
        assert "Promotes **model v1.0.0** to **production**" in state.pulls[1]["body"]
