#!/usr/bin/env bash
# Builds every cargo-fuzz target of mailconnect and runs each for a bounded time, starting from the
# committed seeds (seeds/<target>/) and the corpus a previous run left (corpus/<target>/, not
# committed). Prints target / executions / corpus size / crashes, writes the table to LAST_RUN.md,
# and exits non-zero if any target crashed, hung or ran out of memory. The input that did it is in
# artifacts/<target>/ and printed as base64 below the table: replay it in
# tests/fuzz-support/tests/regressions.rs, fix the parser, and give the fix a unit test beside it in
# core (see core/src/transport/smtp.rs, tests).
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 20; `FUZZ_SECONDS=300` for a long local run)
#   FUZZ_TARGETS    space-separated targets (default: all, from Cargo.toml)
#   FUZZ_JOBS       targets run at once (default: the number of cores, at most 2)
#   FUZZ_SANITIZER  none (default: the targets are safe Rust; fastest) or address
#   FUZZ_NO_RECORD  set to leave LAST_RUN.md alone (e.g. a run of one target)
#   FUZZ_TARGET_DIR the instrumented build (default ~/.cache/mailconnect/fuzz-target: outside the
#                   clone, so the next clone on the same machine builds only what changed; a fresh
#                   machine builds all, about 3 to 4 minutes on 2 cores)
#
# cargo fuzz needs nightly-only compiler flags (-Zsanitizer, the sancov passes). This machine has
# only the stable toolchain, so RUSTC_BOOTSTRAP=1 lets stable rustc accept them.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && jobs=2
export RUSTC_BOOTSTRAP=1
target_dir=${FUZZ_TARGET_DIR:-${HOME:-/root}/.cache/mailconnect/fuzz-target}
# Same flags for build and run, so `cargo fuzz run` does not build again. 16 codegen units: the
# build is most of the time on a fresh machine.
flags=(--release --debug-assertions --sanitizer "$sanitizer" --codegen-units 16 --target-dir "$target_dir")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install --locked)"
  cargo install --locked cargo-fuzz@0.13.2
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mailconnect-fuzz$')
fi

started=$(date +%s)
echo "== cargo fuzz build (${#targets[@]} targets, sanitizer $sanitizer)"
cargo fuzz build "${flags[@]}"
built=$(date +%s)

mkdir -p logs
stamp=$(mktemp)
run_one() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a runaway allocation is a finding.
  cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || echo "$t exited with $?" >>"logs/$t.log"
}
running=0
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${seconds} s"
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
finished=$(date +%s)

table=$(mktemp)
total=0
failed=0
{
  echo "| target | executions | corpus size | crashes |"
  echo "|---|---:|---:|---:|"
} >"$table"
for t in "${targets[@]}"; do
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "logs/$t.log" | tail -1)
  if [ -z "$execs" ]; then
    # libFuzzer printed no final stats (it died): take the last progress line's count.
    execs=$(grep -oE '^#[0-9]+' "logs/$t.log" | tail -1 | tr -d '#')
  fi
  execs=${execs:-0}
  corpus=$(find "corpus/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f -newer "$stamp" | wc -l)
  if [ "$crashes" -eq 0 ] && grep -q "exited with" "logs/$t.log"; then
    crashes=1 # it failed without writing an input (a build or start-up failure)
  fi
  total=$((total + execs))
  failed=$((failed + crashes))
  echo "| $t | $execs | $corpus | $crashes |" >>"$table"
done
echo "| **all** | **$total** | | **$failed** |" >>"$table"

echo
cat "$table"
echo
echo "build $((built - started)) s, fuzzing $((finished - built)) s (${seconds} s per target, $jobs at a time)"

if [ -z "${FUZZ_NO_RECORD:-}" ]; then
  {
    echo "# Last recorded fuzzing run"
    echo
    echo "Written by \`tests/fuzz/run.sh\`: $(date -u '+%Y-%m-%d %H:%M UTC'), ${seconds} s per target, $jobs at a time,"
    echo "sanitizer \`$sanitizer\`, $(rustc --version) with RUSTC_BOOTSTRAP=1, $(cargo fuzz --version 2>/dev/null),"
    echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown). Build $((built - started)) s, fuzzing $((finished - built)) s."
    echo "Corpus size counts the inputs kept in \`corpus/<target>/\` after the run (seeds not included)."
    echo
    cat "$table"
  } >LAST_RUN.md
fi

if [ "$failed" -ne 0 ]; then
  for t in "${targets[@]}"; do
    for f in $(find "artifacts/$t" -type f -newer "$stamp"); do
      echo
      echo "== $t: $f"
      grep -m1 -A12 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "logs/$t.log" || tail -20 "logs/$t.log"
      echo "input (base64): $(base64 -w0 "$f")"
    done
    if grep -q "exited with" "logs/$t.log" && [ -z "$(find "artifacts/$t" -type f -newer "$stamp")" ]; then
      echo "== $t failed:"
      tail -20 "logs/$t.log"
    fi
  done
  rm -f "$stamp" "$table"
  echo "fuzz: $failed finding(s)" >&2
  exit 1
fi
rm -f "$stamp" "$table"
