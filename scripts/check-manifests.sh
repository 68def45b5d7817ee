#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml against the Kubernetes schemas, strictly (unknown fields are
# errors), offline, with the `kubernetes-validate` package from PyPI installed once into a virtual
# environment under target/ (its schemas ship with it).
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.37.0
venv=target/kubernetes-validate
if [[ ! -x "$venv/bin/kubernetes-validate" ]] || [[ "$("$venv/bin/pip" show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')" != "$version" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi
# The oldest Kubernetes still supported upstream when these were written, and the newest known.
for k in 1.30.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$k" deploy/kubernetes/*.yaml
done
echo "check-manifests: deploy/kubernetes/*.yaml are valid for Kubernetes 1.30 and 1.37"
