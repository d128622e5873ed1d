#!/usr/bin/env bash
# A real single-node Slurm cluster (munged + slurmctld + slurmd from Debian) under one base
# directory, for tests and for trying the Slurm scripts on a workstation.
#   slurm/testcluster.sh start BASE   -> brings it up, waits until the node is idle, prints
#                                        "export SLURM_CONF=BASE/etc/slurm.conf"
#   slurm/testcluster.sh stop BASE    -> stops exactly the daemons it started (pid files)
# Facts (see ../shared/docs/slurm-notes.md): root, no systemd, auth/munge, no cgroups,
# ports 6817/6818 (so one such cluster per machine at a time).
set -euo pipefail
cmd=${1:?usage: testcluster.sh start|stop BASE}
base=${2:?usage: testcluster.sh start|stop BASE}
mkdir -p "$base"
base=$(cd "$base" && pwd)
conf=$base/etc/slurm.conf

stop() {
  local f pid
  for f in "$base/run/slurmd.pid" "$base/run/slurmctld.pid" "$base/run/munged.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

case "$cmd" in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: testcluster.sh start|stop BASE" >&2; exit 2 ;;
esac

for t in munged slurmctld slurmd mungekey sbatch squeue scontrol; do
  command -v "$t" >/dev/null || { echo "testcluster: $t not installed (Debian: slurm-wlm munge)" >&2; exit 3; }
done
if ss -ltn 2>/dev/null | grep -qE ':(6817|6818)\b'; then
  echo "testcluster: ports 6817/6818 already in use (another Slurm cluster runs on this machine)" >&2; exit 4
fi
mkdir -p "$base"/{etc,run,log,spool/ctld,spool/d,munge-key}
chmod 0755 "$base/run"; chmod 0700 "$base/munge-key"
[ -f "$base/munge-key/munge.key" ] || mungekey -c -k "$base/munge-key/munge.key" >/dev/null 2>&1
munged --socket="$base/run/munge.sock" --key-file="$base/munge-key/munge.key" \
  --pid-file="$base/run/munged.pid" --log-file="$base/log/munged.log" --seed-file="$base/run/munge.seed" -f 2>/dev/null \
  || munged --socket="$base/run/munge.sock" --key-file="$base/munge-key/munge.key" \
       --pid-file="$base/run/munged.pid" --log-file="$base/log/munged.log" --seed-file="$base/run/munge.seed"
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 85 / 100))/" <<<"$node")
cat >"$conf" <<CONF
ClusterName=mbsrtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$base/run/munge.sock
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$base/spool/ctld
SlurmdSpoolDir=$base/spool/d
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
DependencyParameters=kill_invalid_depend
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
slurmctld -f "$conf"
slurmd -f "$conf" -N "$host"
for _ in $(seq 100); do
  st=$(sinfo -h -o %T 2>/dev/null | head -n 1 || true)
  case "$st" in idle*) echo "export SLURM_CONF=$conf"; exit 0 ;; esac
  sleep 0.2
done
echo "testcluster: node did not become idle (state '${st:-none}'); logs in $base/log" >&2
stop
exit 5
