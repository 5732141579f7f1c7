# Sourced by the prepared GPU scripts (benchmarks/*/gpu_*.sh): the repository root as the
# working directory, $out for results ($OUT on the device machine), and the wheels carried in
# .whl/ (the device reaches no package index) installed into /tmp/site for PYTHONPATH.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-/tmp/gpu_out}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONUNBUFFERED=1
