#!/usr/bin/env bash
# A longer differential run against real OpenFGA (the `fga` CLI from PyPI, installed under
# target/pyenv-fga on first use): COUNT random models, tuples and questions from seed SEED.
#   tests/it/fga_diff/run.sh [SEED] [COUNT]        (defaults: a seed from the clock, 1000 cases)
# Each case's store files stay in target/fga-diff/ (SEED.ask.fga.yaml as asked, SEED.fga.yaml
# with OpenFGA's answers); rerun one with `purview test target/fga-diff/SEED.fga.yaml`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
seed="${1:-$(date +%s)}"
count="${2:-1000}"
echo "OpenFGA differential: seed $seed, $count cases"
PURVIEW_FGA_DIFF_SEED="$seed" PURVIEW_FGA_DIFF_CASES="$count" \
    cargo test --test it fga_diff -- --nocapture
