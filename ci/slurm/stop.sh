#!/usr/bin/env bash
# Stop the daemons started by start.sh (by the pids they wrote), cancelling any jobs first.
set -uo pipefail
state="${ICL_SLURM_DIR:-/tmp/icl-slurm}"
export SLURM_CONF="$state/slurm.conf"
[ -f "$SLURM_CONF" ] && timeout 10 scancel --full --user="$(id -un)" 2>/dev/null
for f in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munge/munged.pid"; do
    [ -s "$f" ] || continue
    pid="$(cat "$f")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$f"
done
echo "stop.sh: slurm daemons stopped" >&2
exit 0
