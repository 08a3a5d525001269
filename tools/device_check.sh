#!/usr/bin/env bash
# Run every chapter with -p device cuda on a CUDA machine whose python3 already has torch.
# Used with the lent GPU machine: wheels for the missing packages in .whl/, the corpus in .devdata/.
# Prints one line per chapter (tools/run_chapters.py) and the GPU benchmark; writes into $OUT if set.
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" SEQTAG_DATA="${SEQTAG_DATA:-$PWD/.devdata}" TQDM_DISABLE=1 PYTHONUNBUFFERED=1
python3 -m ipykernel install --prefix /tmp/kern --name python3 >/dev/null && export JUPYTER_PATH=/tmp/kern/share/jupyter
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
mkdir -p "$OUT/nb"
python3 tools/run_chapters.py --keep-going --out "$OUT/nb" -p device cuda --record "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/chapters.log"
(cd "$OUT/nb" && tar czf ../notebooks.tgz ./*.ipynb && rm -rf "$OUT/nb")
