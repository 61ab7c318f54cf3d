#!/usr/bin/env bash
# Bounded libFuzzer run of one target, as recorded in docs/fuzzing.md:
#   fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
# New inputs go to fuzz/work/TARGET (git-ignored); the committed seeds in
# fuzz/corpus/TARGET (and fuzz/corpus-extra/TARGET, see seed.sh) are read only.
# Crashes, timeouts and OOMs land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
t=$1 secs=$2
shift 2
mkdir -p "work/$t"
dirs=("work/$t" "corpus/$t")
[ -d "corpus-extra/$t" ] && dirs+=("corpus-extra/$t")
exec nice -n 10 cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@"
