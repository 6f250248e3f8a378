#!/usr/bin/env bash
# The numeric tests (pytest -m numerics: golden files of the original code, scoring against direct computation)
# under each kernel set PyTorch's CPU dispatch can pick: default (no vector extensions), AVX2 and, where this CPU
# has it, AVX-512. ATEN_CPU_CAPABILITY only lowers the capability; asking for one the CPU lacks would quietly run
# the highest it has, so AVX-512 runs only where PyTorch detects it.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
native=$($py -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
capabilities=(default avx2)
case "$native" in
  AVX512*) capabilities+=(avx512) ;;
  *) echo "numerics: this CPU's highest capability is $native; AVX-512 not run here" ;;
esac
for capability in "${capabilities[@]}"; do
  got=$(ATEN_CPU_CAPABILITY=$capability $py -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
  echo "numerics: ATEN_CPU_CAPABILITY=$capability (PyTorch reports $got)"
  ATEN_CPU_CAPABILITY=$capability .venv/bin/pytest -q -m numerics -p no:cacheprovider
done
