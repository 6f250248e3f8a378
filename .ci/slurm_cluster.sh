#!/usr/bin/env bash
# A real single-node SLURM for CI: munge, slurmctld and slurmd on this machine,
# one node declaring two fake GPUs (gres on /dev/null and /dev/zero).
#   .ci/slurm_cluster.sh start STATE_DIR   installs (Debian packages) and starts the daemons
#   .ci/slurm_cluster.sh stop STATE_DIR    stops them by PID
# No cgroups here, hence task/none and proctrack/linuxproc. No slurmdbd: the
# workflow's status checks use squeue, so MinJobAge keeps finished jobs visible,
# and a jobcomp file keeps the record of every job (with its TRES, GPUs included).
set -euo pipefail
action=$1
state=$(realpath -m "$2")
host=$(hostname -s)

stop() {
  for daemon in slurmd slurmctld munged; do
    if [ -s "$state/$daemon.pid" ]; then
      kill "$(cat "$state/$daemon.pid")" 2>/dev/null || true
    fi
  done
  sleep 1
}

if [ "$action" = stop ]; then
  stop
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

mkdir -p "$state"/{spool/ctld,spool/d,log} /etc/slurm /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 400 /etc/munge/munge.key
runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid --force
for _ in $(seq 20); do [ -s /run/munge/munged.pid ] && break; sleep 0.5; done
cp /run/munge/munged.pid "$state/munged.pid"

# The executor plugin drops SLURM_CONF from the job environment, so the
# config must live at the default path.
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=gfmci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
GresTypes=gpu
DefMemPerCPU=500
MinJobAge=1800
ReturnToService=2
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
NodeName=$host CPUs=16 RealMemory=128000 Gres=gpu:a100:2 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
cat > /etc/slurm/gres.conf <<CONF
NodeName=$host Name=gpu Type=a100 File=/dev/null
NodeName=$host Name=gpu Type=a100 File=/dev/zero
CONF

/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
  if timeout 5 sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; then
    timeout 5 sinfo
    exit 0
  fi
  sleep 1
done
echo "SLURM did not come up; slurmctld log:" >&2
tail -20 "$state/log/slurmctld.log" >&2 || true
tail -20 "$state/log/slurmd.log" >&2 || true
stop
exit 1
