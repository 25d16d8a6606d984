#!/usr/bin/env bash
# Lint and render the givfleet chart with the real tools, then validate every rendered manifest against the
# Kubernetes API schemas. Needs `helm` (v3) on PATH and kubernetes-validate (`pip install kubernetes-validate`).
#   helm/check.sh [KUBERNETES_VERSION]     (default 1.30.0)
# The checks that need no binary (schema, values paths, YAML shape, givfleet commands) run in pytest: tests/helm.
set -euo pipefail
cd "$(dirname "$0")/givfleet"
kube_version=${1:-1.30.0}

if ! command -v helm >/dev/null; then
  echo "helm/check.sh: helm is not on PATH (https://helm.sh/docs/intro/install/)" >&2
  exit 2
fi
if ! command -v kubernetes-validate >/dev/null; then
  echo "helm/check.sh: kubernetes-validate is not installed: pip install kubernetes-validate" >&2
  exit 2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "the default values render nothing: the Secret's values are required"
if helm template check . >"$out/default.txt" 2>&1; then
  echo "FAIL: the chart rendered without a database URL, Redis URL and encryption keys" >&2
  exit 1
fi
grep -q "set secrets.existingSecret" "$out/default.txt"
echo "refused, as it should: $(grep -o 'givfleet: set secrets.existingSecret[^"]*' "$out/default.txt" | head -1)"

step "a queue served by no worker group is refused"
if helm template check . -f ci/production-values.yaml --set workers.bulk.enabled=false >"$out/queues.txt" 2>&1; then
  echo "FAIL: the chart rendered with no worker on the bulk queue" >&2
  exit 1
fi
grep -q "no enabled worker group serves the bulk queue" "$out/queues.txt"
echo "refused, as it should"

for values in ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  step "helm lint ($values)"
  helm lint --strict --values "$values" .
  step "helm template ($values) | kubernetes-validate (Kubernetes $kube_version)"
  helm template "check-$name" . --values "$values" --kube-version "$kube_version" \
    --api-versions monitoring.coreos.com/v1 >"$out/$name.yaml"
  # ServiceMonitor is a CRD of the Prometheus Operator: kubernetes-validate has no schema for it.
  python3 - "$out/$name.yaml" "$out/$name" <<'PY'
import pathlib, sys, yaml
source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
target.mkdir()
for index, document in enumerate(d for d in yaml.safe_load_all(source.read_text()) if d):
    if document["kind"] == "ServiceMonitor":
        assert document["spec"]["endpoints"][0]["path"] == "/metrics"
        continue
    (target / f"{index:02d}-{document['kind']}.yaml").write_text(yaml.safe_dump(document))
PY
  kubernetes-validate --strict --kubernetes-version "$kube_version" "$out/$name"/*.yaml
done

echo
echo "helm/check.sh: the chart lints, renders and validates."
