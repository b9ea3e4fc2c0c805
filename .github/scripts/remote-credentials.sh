#!/usr/bin/env bash
# Hand the DVC remote's credentials from repository secrets to the rest of the job.
#
# Every credential a step can hold is read from the environment that the runner builds
# for it, and a step's own `env:` wins over what earlier steps wrote to $GITHUB_ENV
# (the runner merges GITHUB_ENV first and the step's env block over it, empty values
# included). So no remote step names a credential in its `env:`: an empty secret there
# would blank the keys that an OIDC step (aws-actions/configure-aws-credentials,
# google-github-actions/auth, azure/login) wrote before it. Instead this step, run once
# near the top of the job, writes each secret that is set to $GITHUB_ENV and leaves
# every other name alone; an OIDC step placed after it overrides what it wrote.
#
# Input: SECRET_<NAME> for each name below (from `secrets.<NAME>`; empty when unset).
#
# `remote-credentials.sh --forget`, after a job's last step that uses the remote, blanks
# every credential either source set, so that the steps after it (third-party actions,
# the report comment) never hold the remote's keys.
set -euo pipefail

names=(
  AWS_ACCESS_KEY_ID
  AWS_SECRET_ACCESS_KEY
  AWS_SESSION_TOKEN
  AZURE_STORAGE_CONNECTION_STRING
)
target=${GITHUB_ENV:?GITHUB_ENV is not set: run this as a workflow step}

if [ "${1:-}" = --forget ]; then
  for name in "${names[@]}" GOOGLE_APPLICATION_CREDENTIALS; do
    echo "$name=" >>"$target"
  done
  echo "DVC remote credentials blanked for the rest of the job"
  exit 0
fi

handed=()
for name in "${names[@]}"; do
  secret_var="SECRET_$name"
  value=${!secret_var:-}
  [ -n "$value" ] || continue
  # The heredoc form keeps any value whole, newlines and '=' included; the delimiter
  # is random so that no value can end the block early.
  delimiter="EOF_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$target"
  handed+=("$name")
done

if [ "${#handed[@]}" -eq 0 ]; then
  echo "no DVC remote secrets set: credentials, if any, come from another step (OIDC)"
else
  echo "DVC remote credentials from secrets: ${handed[*]}"
fi
