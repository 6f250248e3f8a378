#!/usr/bin/env bash
# Runs a tiny two-point study (rules/study.smk) through profiles/slurm on a real one-node SLURM with two fake
# GPUs, then checks that each training and each shard was its own GPU job and that the study's summary equals
# a local run's byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d /tmp/gfm-slurm-study.XXXXXX)
state=$work/cluster
snakemake=$repo/.venv/bin/snakemake

trap '.ci/slurm_cluster.sh stop "$state"' EXIT
timeout 1200 .ci/slurm_cluster.sh start "$state"

.venv/bin/python .ci/slurm_check.py study-config "$work"
# Same threads in both runs: the numbers must match to the last bit.
common=(-s "$repo/Snakefile" --configfile "$work/config.yaml"
        --set-threads study_train_model=2 study_score_shard=2)

# The local run goes on beside the SLURM run below, whose time is mostly spent waiting on status polls.
echo "== local study run (beside the SLURM run)"
(set +e; timeout 1200 "$snakemake" "${common[@]}" --directory "$work/local" --cores 2 -q >"$work/local.log" 2>&1
 echo $? >"$work/local.rc") &
local_run=$!

# No accounting database here: no account to check, and squeue for job status.
slurm=("${common[@]}" --profile "$repo/profiles/slurm" --slurm-no-account --slurm-status-command squeue
       --slurm-init-seconds-before-status-checks 2)

echo "== SLURM study run (profiles/slurm)"
timeout 1200 "$snakemake" "${slurm[@]}" --directory "$work/slurm" --slurm-keep-successful-logs --verbose \
  >"$work/slurm.log" 2>&1 || { tail -60 "$work/slurm.log"; tail -20 "$state/log/slurmctld.log"; exit 1; }
grep -E "submitted with SLURM jobid" "$work/slurm.log" | head -40
timeout 30 scontrol show job -o >"$work/jobs.txt"
wait "$local_run"
[ "$(cat "$work/local.rc")" = 0 ] || { echo "the local study run failed:"; tail -30 "$work/local.log"; exit 1; }

.venv/bin/python .ci/slurm_check.py study-compare "$work"
echo "SLURM study test passed"
