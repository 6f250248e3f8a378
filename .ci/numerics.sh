#!/usr/bin/env bash
# The numeric tests (pytest -m numerics: golden files of the original code, scoring against direct computation)
# under each kernel set PyTorch's CPU dispatch can pick: default (no vector extensions), AVX2 and AVX-512.
# `make test` has just run them under this CPU's own (highest) capability; here they run again under each lower
# one. ATEN_CPU_CAPABILITY can only lower the capability (asking for one the CPU lacks runs the highest it has),
# so a CPU with AVX-512 covers all three, one with AVX2 only the first two. Slow tests are left out here; the one
# that trains the demo's target (a check of memorisation, not of equality) is covered in CI by demo_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
native=$($py -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
case "$native" in
  AVX512*) lower=(default avx2) ;;
  AVX2) lower=(default) ; echo "numerics: this CPU has no AVX-512; make test ran AVX2" ;;
  *) lower=() ; echo "numerics: this CPU's highest capability is $native; make test ran it" ;;
esac
echo "numerics: make test ran $native"
for capability in "${lower[@]}"; do
  got=$(ATEN_CPU_CAPABILITY=$capability $py -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
  echo "numerics: ATEN_CPU_CAPABILITY=$capability (PyTorch reports $got)"
  ATEN_CPU_CAPABILITY=$capability .venv/bin/pytest -q -m "numerics and not slow" -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder
done
