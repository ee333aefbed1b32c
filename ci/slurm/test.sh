#!/usr/bin/env bash
# `make test-slurm`: the Slurm executor's integration tests (tests/slurm.rs) alone. Starts the
# single-node Slurm of start.sh if it is installed and not already answering (and stops it
# afterwards); with Slurm absent the tests print SKIP, unless CI_REQUIRE_SLURM=1.
set -uo pipefail
cd "$(dirname "$0")/../.."
export SLURM_CONF="${SLURM_CONF:-${ICL_SLURM_DIR:-/tmp/icl-slurm}/slurm.conf}"
export PATH="$PATH:/usr/sbin"
started=
if ! sinfo -h >/dev/null 2>&1 && command -v slurmctld >/dev/null; then
    ci/slurm/start.sh >/dev/null && started=1
fi
t0=$(date +%s)
# --workspace: the same feature set as `make build`, so nothing is compiled a second time.
cargo test --release --workspace --test slurm -- --ignored --test-threads=1 --nocapture
rc=$?
echo "test-slurm: exit $rc after $(( $(date +%s) - t0 )) s" >&2
[ -n "$started" ] && ci/slurm/stop.sh
exit $rc
