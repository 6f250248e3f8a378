#!/usr/bin/env bash
# Runs the workflow through profiles/slurm on a real one-node SLURM with two
# fake GPUs, then checks the SLURM records and compares with a local run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d /tmp/gfm-slurm.XXXXXX)
state=$work/cluster
snakemake=$repo/.venv/bin/snakemake

trap '.ci/slurm_cluster.sh stop "$state"' EXIT
timeout 1200 .ci/slurm_cluster.sh start "$state"

.venv/bin/python .ci/slurm_check.py config "$work"
# Same threads in both runs: the numbers must match to the last bit.
common=(-s "$repo/Snakefile" --configfile "$work/config.yaml" --set-threads train_model=2 score_shard=2)

# The local run makes only the outputs compared below (the robustness rules run under SLURM to show that they ask
# for no GPU; their outputs are not compared), and goes on beside the SLURM run, which spends much of its time
# waiting on status polls (the executor's interval grows while no job ends).
mapfile -t targets < <(.venv/bin/python .ci/slurm_check.py targets)
echo "== local run of the compared outputs (beside the SLURM run)"
(set +e; timeout 1500 "$snakemake" "${common[@]}" --directory "$work/local" "${targets[@]}" --cores 2 -q \
   >"$work/local.log" 2>&1
 echo $? >"$work/local.rc") &
local_run=$!

# No accounting database here: no account to check, and squeue for job status.
slurm=("${common[@]}" --profile "$repo/profiles/slurm" --slurm-no-account --slurm-status-command squeue
       --slurm-init-seconds-before-status-checks 2)

# One SLURM run serves both checks: a scoring job is killed with scancel (the run must stop and say which job and
# log), then the re-run must finish the workflow, every job its own SLURM job, its outputs byte-identical to the
# local run's.
echo "== SLURM run (profiles/slurm), one scoring job killed with scancel, then a re-run"
(set +e; timeout 1500 "$snakemake" "${slurm[@]}" --directory "$work/slurm" --retries 0 --slurm-keep-successful-logs \
   --verbose >"$work/slurm.log" 2>&1
 echo $? >"$work/slurm.rc") &
slurm_run=$!
victim=""
for _ in $(seq 2400); do
  victim=$(timeout 5 squeue -h -o "%i %k" | awk '/rule_score_shard/ {print $1; exit}')
  [ -n "$victim" ] && break
  sleep 0.5
done
[ -n "$victim" ] || { echo "no scoring job to kill"; tail -60 "$work/slurm.log"; exit 1; }
timeout 10 scancel "$victim"
wait "$slurm_run"
[ "$(cat "$work/slurm.rc")" != 0 ] || { echo "the run went on after its job was killed"; exit 1; }
grep -A2 "Error in rule score_shard" "$work/slurm.log" | grep -E "CANCELLED" \
  || { echo "the cancelled job was not reported:"; tail -30 "$work/slurm.log"; exit 1; }
grep -E "log: results/logs/score/.*/shard-[0-9]+\.log" "$work/slurm.log" | head -1 \
  || { echo "the failed shard's log path was not reported"; exit 1; }
timeout 1500 "$snakemake" "${slurm[@]}" --directory "$work/slurm" --slurm-keep-successful-logs --verbose \
  >"$work/rerun.log" 2>&1 || { tail -60 "$work/rerun.log"; tail -20 "$state/log/slurmctld.log"; exit 1; }
cat "$work/slurm.log" "$work/rerun.log" | grep -E "submitted with SLURM jobid" | head -40
timeout 30 scontrol show job -o >"$work/jobs.txt"
wait "$local_run"
[ "$(cat "$work/local.rc")" = 0 ] || { echo "the local run failed:"; tail -30 "$work/local.log"; exit 1; }

.venv/bin/python .ci/slurm_check.py compare "$work" "$victim"

echo "== fault: a profile naming a partition that does not exist"
if timeout 300 "$snakemake" results/reference/contigs.tsv "${slurm[@]}" --directory "$work/badpartition" \
  --default-resources slurm_partition=nosuchpartition >"$work/badpartition.log" 2>&1; then
  echo "a run on a missing partition succeeded"; exit 1
fi
grep -i "invalid partition" "$work/badpartition.log" | head -3 \
  || { echo "the submit error was not surfaced:"; tail -30 "$work/badpartition.log"; exit 1; }
echo "SLURM tests passed"
