# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# make test runs the suite in this many pytest-xdist workers (one module, or the modules sharing one workflow run,
# per worker at a time: tests/conftest.py); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= $(CORES)

.PHONY: demo demo-individuals demo-dp demo-inference demo-masked demo-defences study study-seed demo-check test lint install clean bench bench-slurm

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# The demo's config is config/demo.yaml; config/config.yaml is the base of a user's own run (schema defaults only).
demo: $(STAMP)
	GFM_AUDIT_CONFIG=config/demo.yaml $(BIN)/snakemake --cores $(CORES)
	@echo
	@echo "Demo finished. Outputs are under $(CURDIR)/results/:"
	@echo "  windows:    results/windows/windows.tsv, windows.fa, snps.tsv.gz"
	@echo "  neighbors:  results/neighbors/neighbors.tsv, shard-<i>.fa"
	@echo "  membership: results/membership.tsv"
	@echo "  models:     results/models/<name>/"
	@echo "  features:   results/features/<model>.parquet (per window), <model>/shard-<i>.parquet (per sequence)"
	@echo "  scores:     results/scores/<model>/shard-<i>.parquet (per token)"
	@echo "  attacks:    results/attacks/<model>/metrics.tsv"
	@echo "  memorisation: results/memorisation/<model>/exposure.tsv, extraction.tsv"
	@echo "  robustness: results/robustness/ga/<classifier>/, adv_training/<classifier>/, fimba/, attack_table.tsv"
	@echo "  logs:       results/logs/, benchmarks: results/benchmarks/"
	@echo
	@echo "Report: $(CURDIR)/results/report/report.html"

# Personal genomes: 300 real 1000 Genomes individuals (config/individuals.yaml); shares results/ with `make demo`.
demo-individuals: $(STAMP)
	GFM_AUDIT_CONFIG=config/individuals.yaml $(BIN)/snakemake --cores $(CORES)
	@echo
	@echo "Individuals demo finished. Outputs are under $(CURDIR)/results/:"
	@echo "  haplotypes: results/individuals/haplotypes.fa, haplotypes.tsv, alleles.tsv.gz, counts.tsv"
	@echo "  membership: results/membership_individuals.tsv"
	@echo "  attacks:    results/individuals/attacks/<target>/person_metrics.tsv, windows_curve.tsv"
	@echo "  genotypes:  results/individuals/genotypes/<target>/summary.tsv"
	@echo
	@echo "Report: $(CURDIR)/results/report/report.html"

# The privacy audit of a target trained with DP-SGD (config/demo_dp.yaml), in demo-dp/ so that it leaves the
# demo's results alone.
demo-dp: $(STAMP)
	mkdir -p demo-dp && ln -sfn $(CURDIR)/resources demo-dp/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_dp.yaml $(BIN)/snakemake --cores $(CORES) --directory demo-dp
	@echo
	@echo "DP demo finished. Claim: $(CURDIR)/demo-dp/results/models/demo_lm/dp.json;"
	@echo "one-run bound: $(CURDIR)/demo-dp/results/memorisation/demo_lm/one_run.tsv"
	@echo
	@echo "Report: $(CURDIR)/demo-dp/results/report/report.html"

# The demo's privacy audit with the attacks it leaves out (dc_pdd, recall, gradnorm, ramia) and dataset inference
# (config/demo_inference.yaml), in demo-inference/ so that it leaves the demo's results alone.
demo-inference: $(STAMP)
	mkdir -p demo-inference && ln -sfn $(CURDIR)/resources demo-inference/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_inference.yaml $(BIN)/snakemake --cores $(CORES) --directory demo-inference
	@echo
	@echo "Dataset inference demo finished. Attacks: $(CURDIR)/demo-inference/results/attacks/demo_lm/metrics.tsv;"
	@echo "dataset inference: $(CURDIR)/demo-inference/results/dataset_inference/demo_lm/result.tsv, p_curve.tsv"
	@echo
	@echo "Report: $(CURDIR)/demo-inference/results/report/report.html"

# The demo's privacy audit on a masked model scored by stride pseudo-log-likelihood (config/demo_masked.yaml), in
# demo-masked/ so that it leaves the demo's results alone.
demo-masked: $(STAMP)
	mkdir -p demo-masked && ln -sfn $(CURDIR)/resources demo-masked/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_masked.yaml $(BIN)/snakemake --cores $(CORES) --directory demo-masked
	@echo
	@echo "Masked demo finished. Attacks: $(CURDIR)/demo-masked/results/attacks/demo_mlm/metrics.tsv"
	@echo "Report: $(CURDIR)/demo-masked/results/report/report.html"

# The project's seed benchmark in its own setting (config/studies/hyenadna_seed.yaml, docs/benchmarks/seed-setting.md):
# a tiny HyenaDNA trained from scratch in membership.mode genome, its attack tables, and their comparison with the
# pilot (benchmarks/seed_comparison.tsv), in study-seed/ so that it leaves the demo's results alone.
study-seed: $(STAMP)
	mkdir -p study-seed && ln -sfn $(CURDIR)/resources study-seed/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/studies/hyenadna_seed.yaml $(BIN)/snakemake --cores $(CORES) --directory study-seed \
		results/attacks/hyenadna/metrics.tsv results/attacks/hyenadna/neighborhood_thresholds.tsv
	PYTHONPATH=$(CURDIR)/workflow_scripts $(BIN)/python benchmarks/seed_comparison.py study-seed/results \
		--out benchmarks/seed_comparison.tsv --auc benchmarks/seed_comparison_auc.tsv --page docs/benchmarks/seed-setting.md
	@echo
	@echo "Seed benchmark finished. Comparison: $(CURDIR)/benchmarks/seed_comparison.tsv;"
	@echo "attacks: $(CURDIR)/study-seed/results/attacks/hyenadna/metrics.tsv, neighborhood_thresholds.tsv"

# The default study (config/study.yaml, docs/study.md): eight privacy audits of the demo's LM, epochs {1, 2, 4, 8}
# x duplication {1, 4}, in study/ so that it leaves the demo's results alone.
study: $(STAMP)
	mkdir -p study && ln -sfn $(CURDIR)/resources study/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/study.yaml $(BIN)/snakemake --cores $(CORES) --directory study
	@echo
	@echo "Study finished. Table: $(CURDIR)/study/results/study/summary.tsv;"
	@echo "figures: $(CURDIR)/study/results/study/auc_vs_epochs.png, auc_vs_duplication.png"
	@echo "per point: $(CURDIR)/study/results/study/<point>/attacks/demo_lm/metrics.tsv"
	@echo
	@echo "Report: $(CURDIR)/study/results/study/report.html"

# The GA's defences (Madry adversarial training, standard adversarial training, FreeLB, ADFAR) and
# randomised-smoothing certificates on the demo task (config/demo_defences.yaml), in demo-defences/ so that it
# leaves the demo's results alone.
demo-defences: $(STAMP)
	mkdir -p demo-defences && ln -sfn $(CURDIR)/resources demo-defences/resources
	GFM_AUDIT_CONFIG=$(CURDIR)/config/demo_defences.yaml $(BIN)/snakemake --cores $(CORES) --directory demo-defences
	@echo
	@echo "Defences demo finished. Defence rows: $(CURDIR)/demo-defences/results/robustness/defence_table.tsv;"
	@echo "per scheme: $(CURDIR)/demo-defences/results/robustness/adv_training/<classifier>/ (its first scheme:"
	@echo "  madry on the CNN, iterative on the GFM head) and results/robustness/defences/<classifier>/<scheme>/;"
	@echo "  certificates:"
	@echo "  $(CURDIR)/demo-defences/results/robustness/ga/<classifier>/certified_accuracy.tsv"
	@echo
	@echo "Report: $(CURDIR)/demo-defences/results/report/report.html"

test: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The demo's privacy and memorisation audit in a fresh folder, its headline figures against docs/demo-results.tsv.
demo-check: $(STAMP)
	bash .ci/demo_check.sh

bench: $(STAMP) bench-slurm
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_rerun.py

# The scale benchmark's 10k-window genome once through profiles/slurm on the CI's one-node SLURM
# (.ci/slurm_cluster.sh: needs root, installs the SLURM packages when missing), then the same run locally:
# jobs per rule and their states, per-rule time and peak RSS, and the outputs compared byte for byte.
bench-slurm: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py --slurm --compare-local --sizes 10000

# Python: ruff lint and format; Snakefile and rules/*.smk: snakefmt (line length in pyproject.toml), then Snakemake's lint.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
