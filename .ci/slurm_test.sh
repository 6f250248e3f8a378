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

echo "== local run"
timeout 900 "$snakemake" "${common[@]}" --directory "$work/local" --cores 2 -q >"$work/local.log" 2>&1 \
  || { tail -30 "$work/local.log"; exit 1; }

echo "== SLURM run (profiles/slurm)"
timeout 1500 "$snakemake" "${common[@]}" --directory "$work/slurm" --profile "$repo/profiles/slurm" \
  --slurm-no-account --slurm-status-command squeue --slurm-init-seconds-before-status-checks 2 \
  --slurm-keep-successful-logs --verbose >"$work/slurm.log" 2>&1 \
  || { tail -60 "$work/slurm.log"; tail -20 "$state/log/slurmctld.log"; exit 1; }
grep -E "submitted with SLURM jobid" "$work/slurm.log" | head -40

.venv/bin/python .ci/slurm_check.py compare "$work"
