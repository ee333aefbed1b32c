#!/usr/bin/env bash
# Start a single-node Slurm (munged, slurmctld, slurmd) on loopback, by hand (no systemd).
# Usage: ci/slurm/start.sh            state in $ICL_SLURM_DIR (default /tmp/icl-slurm)
# Prints `export SLURM_CONF=...` on its last line; clients (sbatch, squeue, icl) need it.
# Exit 1 (with the daemons' logs) when the node does not come up within 60 s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${ICL_SLURM_DIR:-/tmp/icl-slurm}"
for b in munged slurmctld slurmd sbatch squeue; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "start.sh: $b not installed (apt-get install -y slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
"$here/stop.sh" >/dev/null 2>&1 || true
mkdir -p "$state"/{ctld,d,log,munge}
sed -e "s|@STATE@|$state|g" -e "s|@CPUS@|$(nproc)|g" "$here/slurm.conf" > "$state/slurm.conf"
export SLURM_CONF="$state/slurm.conf"

# munge: own socket, key, pid and log under $state, so a system munged (if any) is untouched.
if [ ! -s "$state/munge/munge.key" ]; then
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1 count=128 status=none
fi
chmod 700 "$state/munge"; chmod 400 "$state/munge/munge.key"
sock=/run/munge/munge.socket.2   # slurm's default (AuthInfo not set), so keep munged's default
mkdir -p /run/munge; chmod 755 /run/munge
munged --force --key-file="$state/munge/munge.key" --socket="$sock" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/log/munged.log" \
    --seed-file="$state/munge/munged.seed"
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF" -N localhost

for _ in $(seq 1 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "start.sh: slurm up ($(sinfo -h -o '%P %D %c %T' | head -1)), SLURM_CONF=$SLURM_CONF" >&2
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "start.sh: the node did not come up in 60 s; logs follow" >&2
tail -n 30 "$state"/log/*.log >&2 || true
sinfo -N >&2 || true
exit 1
