#!/usr/bin/env bash
# DeepSearch against plain GRPO and DeepSearch's ablations, from one warm start
# (issue: "the DeepSearch-vs-GRPO experiment"; the paper's Table 4 ablations).
#
# Every variant is a `deepsearch run` on the embedded default (three-number Countdown, the
# tiny model, 16 problems x 8 trajectories per training step) that starts from the same
# warm-started model, the same training and held-out sets and the same seeds, and trains the
# same number of steps; held-out accuracy (a search tree of 8 leaves per held-out problem) is
# measured every EVAL_EVERY steps. Variants:
#   deepsearch        the method: global frontier, constrained q update, most confident
#                     negative, mean-only advantages
#   grpo              plain GRPO: 8 independent rollouts per problem, outcome reward
#   uct_backtrace     search.backtrace=uct (UCT from the root instead of the global frontier)
#   vanilla_q         search.q_update=vanilla
#   std_advantages    learner.train.advantage_norm=mean_std
#   random_negative   search.negative_choice=random
#
#   bench/experiment.sh [OUT]        (default experiment/; STEPS=150 EVAL_EVERY=25 SEED=1)
#
# Writes OUT/<variant>/ (each a complete run directory), OUT/results.csv (every evaluation of
# every variant), OUT/results.md (the table) and OUT/heldout_accuracy.png (pass@1 against the
# training job's generated tokens, one line per variant). Prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-experiment}"
steps="${STEPS:-150}"
eval_every="${EVAL_EVERY:-25}"
seed="${SEED:-1}"
bin="${DEEPSEARCH:-build/cli/deepsearch}"
[[ -x "$bin" ]] || { echo "experiment: $bin not built (cmake --build build --target deepsearch)" >&2; exit 1; }

variants=(deepsearch grpo uct_backtrace vanilla_q std_advantages random_negative)
declare -A extra=(
  [deepsearch]=""
  [grpo]="--set learner.program.algorithm=grpo"
  [uct_backtrace]="--set search.backtrace=uct"
  [vanilla_q]="--set search.q_update=vanilla"
  [std_advantages]="--set learner.train.advantage_norm=mean_std"
  [random_negative]="--set search.negative_choice=random"
)
common=(--set "learner.program.max_steps=$steps" --set "run.eval_every=$eval_every"
        --set "run.seed=$seed")

mkdir -p "$out"
first="${variants[0]}"
for v in "${variants[@]}"; do
  dir="$out/$v"
  if [[ -f "$dir/summary.txt" ]]; then echo "experiment: $v done already ($dir)"; continue; fi
  if [[ "$v" != "$first" && ! -d "$dir/sft-model" ]]; then
    # The same warm start, data and initial model as the first variant.
    mkdir -p "$dir"
    cp -r "$out/$first/init-model" "$out/$first/sft-model" "$out/$first/data" "$dir/"
  fi
  echo "experiment: $v: $bin run --dir $dir ${common[*]} ${extra[$v]}"
  start=$SECONDS
  # shellcheck disable=SC2086
  "$bin" run --dir "$dir" "${common[@]}" ${extra[$v]}
  echo "$((SECONDS - start))" > "$dir/wall_seconds"
done

# Every evaluation of every variant, then the table and the plot.
{
  echo "variant,step,generated_tokens,pass1,pass_at_8"
  for v in "${variants[@]}"; do
    tail -n +2 "$out/$v/metrics/eval.csv" | awk -F, -v v="$v" '{print v "," $1 "," $2 "," $7 "," $9}'
  done
} > "$out/results.csv"

{
  echo "| variant | held-out pass@1 at step 0 | best pass@1 (step) | pass@1 at step $steps | pass@8 at step 0 -> $steps | generated tokens (training job) | wall time |"
  echo "|---|---|---|---|---|---|---|"
  for v in "${variants[@]}"; do
    awk -F, -v v="$v" -v wall="$(cat "$out/$v/wall_seconds" 2>/dev/null || echo '?')" '
      NR > 1 {
        if (NR == 2) { p0 = $7; k0 = $9 }
        if ($7 > best) { best = $7; at = $1 }
        last = $7; klast = $9; tokens = $2
      }
      END {
        printf "| %s | %.1f%% | %.1f%% (%d) | %.1f%% | %.0f%% -> %.0f%% | %d | %ss |\n",
               v, 100 * p0, 100 * best, at, 100 * last, 100 * k0, 100 * klast, tokens, wall
      }' "$out/$v/metrics/eval.csv"
  done
} > "$out/results.md"

plot="set terminal pngcairo size 1000,600 noenhanced font 'sans,11'
set output '$out/heldout_accuracy.png'
set title 'Countdown n=3, tiny model: held-out pass@1 (8-leaf search tree per problem), $steps steps'
set xlabel 'generated tokens (training job)'
set ylabel 'held-out pass@1'
set grid
set key outside right
set datafile separator ','
plot "
sep=""
for v in "${variants[@]}"; do
  plot+="$sep'$out/$v/metrics/eval.csv' using 2:7 skip 1 with linespoints lw 2 title '$v'"
  sep=", "
done
echo "$plot" | gnuplot
cat "$out/results.md"
echo "experiment: $out/results.csv, $out/results.md, $out/heldout_accuracy.png"
