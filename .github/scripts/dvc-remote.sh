#!/usr/bin/env bash
# Can this run use the DVC remote? Writes `enabled=true|false` to $GITHUB_OUTPUT.
#
# The remote steps (pull, repro --pull, push) need a shared remote (not a local folder,
# which is the template's default) and credentials for it. When either is missing the
# workflow says why in a notice and goes on without the remote, so a fresh copy of the
# template passes before anyone has configured storage.
#
# Credentials come from the job's environment, which earlier steps fill through
# $GITHUB_ENV (remote-credentials.sh from secrets, or an OIDC step): for S3
# AWS_ACCESS_KEY_ID (keys, or the session an assumed role gives), AWS_PROFILE or
# AWS_WEB_IDENTITY_TOKEN_FILE; for GCS GOOGLE_APPLICATION_CREDENTIALS; for Azure
# AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY,
# AZURE_CLIENT_ID, or an Azure CLI login (azure/login with OIDC), which DVC's default
# credential uses. TRUSTED=false (a pull request from a fork or Dependabot) turns the
# remote off whatever the environment holds.
set -euo pipefail

output=${GITHUB_OUTPUT:-/dev/stdout}

skip() {
  echo "::notice title=DVC remote skipped::$1"
  echo "enabled=false" >>"$output"
  exit 0
}

if [ "${TRUSTED:-false}" != "true" ]; then
  skip "this run gets no secrets (a pull request from a fork, or from Dependabot): the pipeline runs without the DVC remote and nothing is pushed."
fi

name=$(dvc config core.remote 2>/dev/null || true)
if [ -z "$name" ]; then
  skip "no default DVC remote is configured; add one with 'dvc remote add -d NAME URL' (docs/gitops.md: Data and model versions)."
fi
url=$(dvc config "remote.$name.url")

azure_login() {
  command -v az >/dev/null 2>&1 && az account show >/dev/null 2>&1 && echo "Azure CLI login"
}

case "$url" in
  s3://*) credential=${AWS_ACCESS_KEY_ID:-${AWS_PROFILE:-${AWS_WEB_IDENTITY_TOKEN_FILE:-}}} ; wanted="the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY secrets, or the AWS_ROLE_ARN variable (OIDC)" ;;
  gs://*) credential=${GOOGLE_APPLICATION_CREDENTIALS:-} ; wanted="GOOGLE_APPLICATION_CREDENTIALS (a google-github-actions/auth step)" ;;
  azure://*) credential=${AZURE_STORAGE_CONNECTION_STRING:-${AZURE_STORAGE_SAS_TOKEN:-${AZURE_STORAGE_KEY:-${AZURE_CLIENT_ID:-$(azure_login || true)}}}} ; wanted="the AZURE_STORAGE_CONNECTION_STRING secret, or an azure/login step (OIDC)" ;;
  *://*) credential=configured ; wanted="" ;;
  *) skip "the default DVC remote '$name' is a local folder ($url), which a CI runner cannot reach; point it at shared storage (docs/gitops.md: Data and model versions)." ;;
esac

if [ -z "$credential" ]; then
  skip "the DVC remote '$name' ($url) needs $wanted, and none is set for this run."
fi

echo "DVC remote '$name' at $url: enabled"
echo "enabled=true" >>"$output"
