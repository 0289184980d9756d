#!/usr/bin/env bash
# DeepSearch against plain GRPO and DeepSearch's ablations, from one warm start per seed
# (issue: "the DeepSearch-vs-GRPO experiment"; the paper's Table 4 ablations).
#
# Every variant is a `deepsearch run` on the embedded default (three-number Countdown, the
# tiny model, 16 problems x 8 trajectories per training step). For each seed:
#   1. the warm start, once: `deepsearch run --warm-start-only` writes the training set, a
#      pool of POOL held-out problems (never trained on) and the warm-started model;
#   2. the held-out hard set: `deepsearch solve --mode rollout` samples SCREEN_K direct answers
#      per pool problem from the warm-started model (its own seed, so the screening is
#      independent of every later evaluation) and keeps the problems with at most
#      floor(MAX_PASS1 * SCREEN_K) correct: the training hard subset's rule (Pass1@4 <= 25%);
#   3. every variant starts from that model with those sets and the same seeds, and trains until
#      the training job's steps have generated TOKENS response tokens (learner.program.
#      max_generated_tokens: each sampled token once, screening not counted; the job ends
#      after the step that reaches it, MAX_STEPS a cap); held-out accuracy on the hard set is
#      measured every EVAL_EVERY steps, as `deepsearch run` measures it: 32 direct samples per
#      problem (the tables' pass@1 unless EVAL=tree) and a search tree of 8 leaves.
# Variants:
#   deepsearch        the method: global frontier, constrained q update, most confident
#                     negative, mean-only advantages
#   grpo              plain GRPO: 8 independent rollouts per problem, outcome reward
#   uct_backtrace     search.backtrace=uct (UCT from the root instead of the global frontier)
#   vanilla_q         search.q_update=vanilla
#   std_advantages    learner.train.advantage_norm=mean_std
#   random_negative   search.negative_choice=random
#
#   bench/experiment.sh [OUT]
#     TOKENS=1200000 MAX_STEPS=400 EVAL_EVERY=25 SEEDS="1" POOL=200 SCREEN_K=4 MAX_PASS1=0.25
#     VARIANTS="deepsearch grpo uct_backtrace vanilla_q std_advantages random_negative"
#
# Writes OUT/seed-<s>/warm-start/ (the data, the warm start, the screening), OUT/seed-<s>/<variant>/
# (each a complete run directory), OUT/results.csv (every evaluation of every run),
# OUT/results.md (one row per run, then the mean over seeds of each variant) and
# OUT/heldout_accuracy.png (pass@1 on the hard set against the training job's generated
# tokens: one line per variant, the mean over seeds at each evaluation). Prints the tables.
# Finished steps are not run again, so an interrupted experiment resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-experiment}"
tokens="${TOKENS:-1200000}"
max_steps="${MAX_STEPS:-400}"
eval_every="${EVAL_EVERY:-25}"
pool="${POOL:-200}"
screen_k="${SCREEN_K:-4}"
max_pass1="${MAX_PASS1:-0.25}"
read -r -a seeds <<< "${SEEDS:-1}"
read -r -a variants <<< "${VARIANTS:-deepsearch grpo uct_backtrace vanilla_q std_advantages random_negative}"
bin="${DEEPSEARCH:-build/cli/deepsearch}"
[[ -x "$bin" ]] || { echo "experiment: $bin not built (cmake --build build --target deepsearch)" >&2; exit 1; }

# shellcheck source=bench/experiment_lib.sh
source bench/experiment_lib.sh
declare -A extra=([deepsearch]="" [grpo]="--set learner.program.algorithm=grpo")
for a in "${!ablation_switch[@]}"; do extra[$a]="${ablation_switch[$a]}"; done
for v in "${variants[@]}"; do
  [[ -v "extra[$v]" ]] || { echo "experiment: unknown variant '$v' (expected one of ${!extra[*]})" >&2; exit 2; }
done

mkdir -p "$out"
for seed in "${seeds[@]}"; do
  common=(--set "learner.program.max_generated_tokens=$tokens" --set "learner.program.max_steps=$max_steps"
          --set "run.eval_every=$eval_every" --set "run.seed=$seed" --set "run.heldout_problems=$pool")
  ws="$out/seed-$seed/warm-start"
  if [[ ! -f "$ws/heldout_hard.jsonl" ]]; then
    echo "experiment: seed $seed: warm start and held-out pool ($ws)"
    "$bin" run --dir "$ws" "${common[@]}" --warm-start-only
    "$bin" run --dir "$ws" "${common[@]}" --print-config > "$ws/run_config.yaml"
    echo "experiment: seed $seed: screening $pool held-out problems, $screen_k direct samples each"
    screen_hard "$bin" "$ws/sft-model" "$ws/data/heldout.jsonl" "$screen_k" "$max_pass1" \
      "$((seed + 1000003))" "$ws/run_config.yaml" "$ws/heldout_screen.jsonl" "$ws/heldout_hard.jsonl"
  fi
  echo "experiment: seed $seed: held-out hard set: $(wc -l < "$ws/heldout_hard.jsonl") of $pool problems"
  for v in "${variants[@]}"; do
    dir="$out/seed-$seed/$v"
    if [[ -f "$dir/summary.txt" ]]; then echo "experiment: seed $seed $v done already ($dir)"; continue; fi
    if [[ ! -d "$dir/sft-model" ]]; then
      # The seed's warm start and training set; the hard set as the held-out set.
      mkdir -p "$dir/data"
      cp -r "$ws/init-model" "$ws/sft-model" "$dir/"
      cp "$ws/data/train.jsonl" "$dir/data/"
      cp "$ws/heldout_hard.jsonl" "$dir/data/heldout.jsonl"
    fi
    echo "experiment: seed $seed $v: $bin run --dir $dir ${common[*]} ${extra[$v]}"
    start=$SECONDS
    # shellcheck disable=SC2086
    "$bin" run --dir "$dir" "${common[@]}" ${extra[$v]}
    echo "$((SECONDS - start))" > "$dir/wall_seconds"
  done
done

# The evaluation the tables use (EVAL: direct-t1.0, the direct-sampling pass@1 that `deepsearch
# run` reports first, or tree), in the nine columns step,generated_tokens,weight_version,
# problems,samples,correct_samples,pass1,solved,pass_at_k.
eval_kind="${EVAL:-direct-t1.0}"
for seed in "${seeds[@]}"; do
  for v in "${variants[@]}"; do
    m="$out/seed-$seed/$v/metrics"
    awk -F, -v e="$eval_kind" 'NR == 1 { print "step,generated_tokens,weight_version,problems,samples,correct_samples,pass1,solved,pass_at_k"; next }
      $6 == e { print $1 "," $2 "," $5 "," $8 "," $9 "," $10 "," $11 "," $12 "," $13 }' \
      "$m/eval.csv" > "$m/eval_$eval_kind.csv"
  done
done

# Every evaluation of every run.
{
  echo "seed,variant,step,generated_tokens,pass1,pass_at_8"
  for seed in "${seeds[@]}"; do
    for v in "${variants[@]}"; do
      tail -n +2 "$out/seed-$seed/$v/metrics/eval_$eval_kind.csv" |
        awk -F, -v s="$seed" -v v="$v" '{print s "," v "," $1 "," $2 "," $7 "," $9}'
    done
  done
} > "$out/results.csv"

# One row per run, then per variant the mean (and the spread) over seeds.
{
  for seed in "${seeds[@]}"; do
    echo "Seed $seed: held-out hard set of $(wc -l < "$out/seed-$seed/warm-start/heldout_hard.jsonl") problems (of $pool screened)."
  done
  echo
  echo "| seed | variant | pass@1 at step 0 | best pass@1 (step) | final pass@1 (step) | pass@8 start -> end | generated tokens (training job) | wall time |"
  echo "|---|---|---|---|---|---|---|---|"
  for seed in "${seeds[@]}"; do
    for v in "${variants[@]}"; do
      awk -F, -v s="$seed" -v v="$v" -v wall="$(cat "$out/seed-$seed/$v/wall_seconds" 2>/dev/null || echo '?')" '
        NR > 1 {
          if (NR == 2) { p0 = $7; k0 = $9; best = $7; at = $1 }
          if ($7 > best) { best = $7; at = $1 }
          last = $7; klast = $9; tokens = $2; step = $1
        }
        END {
          printf "| %s | %s | %.1f%% | %.1f%% (%d) | %.1f%% (%d) | %.0f%% -> %.0f%% | %d | %ss |\n",
                 s, v, 100 * p0, 100 * best, at, 100 * last, step, 100 * k0, 100 * klast, tokens, wall
        }' "$out/seed-$seed/$v/metrics/eval_$eval_kind.csv"
    done
  done
  echo
  echo "| variant | seeds | final pass@1, mean (min - max) | change from step 0, mean (min - max) | best pass@1, mean | generated tokens, mean |"
  echo "|---|---|---|---|---|---|"
  for v in "${variants[@]}"; do
    awk -F, -v v="$v" '
      NR > 1 && $2 == v {
        key = $1
        if (!(key in first)) { first[key] = $5; best[key] = $5; n++ }
        if ($5 > best[key]) best[key] = $5
        last[key] = $5; tok[key] = $4
      }
      END {
        lo = 1e9; hi = -1e9; dlo = 1e9; dhi = -1e9
        for (k in last) {
          d = last[k] - first[k]
          sl += last[k]; sd += d; sb += best[k]; st += tok[k]
          if (last[k] < lo) lo = last[k]; if (last[k] > hi) hi = last[k]
          if (d < dlo) dlo = d; if (d > dhi) dhi = d
        }
        printf "| %s | %d | %.1f%% (%.1f - %.1f) | %+.1f (%+.1f - %+.1f) points | %.1f%% | %d |\n",
               v, n, 100 * sl / n, 100 * lo, 100 * hi, 100 * sd / n, 100 * dlo, 100 * dhi,
               100 * sb / n, st / n
      }' "$out/results.csv"
  done
} > "$out/results.md"

# The mean over seeds of each variant's i-th evaluation (a run's last one comes after the step
# that spent the budget, which differs between seeds by a few steps), one series per variant.
for v in "${variants[@]}"; do
  awk -F, -v v="$v" 'NR > 1 && $2 == v { i = seen[$1]++; n[i]++; t[i] += $4; p[i] += $5 }
    END { for (i in n) printf "%d,%f,%f\n", i, t[i] / n[i], p[i] / n[i] }' "$out/results.csv" |
    sort -t, -k1,1n > "$out/mean_$v.csv"
done
plot="set terminal pngcairo size 1100,600 noenhanced font 'sans,11'
set output '$out/heldout_accuracy.png'
set title 'Countdown n=3, tiny model: held-out hard set, pass@1 of 8-leaf search trees (mean of ${#seeds[@]} seed(s))'
set xlabel 'generated tokens (training job)'
set ylabel 'held-out pass@1'
set grid
set key outside right
set datafile separator ','
plot "
sep=""
for v in "${variants[@]}"; do
  plot+="$sep'$out/mean_$v.csv' using 2:3 with linespoints lw 2 title '$v'"
  sep=", "
done
echo "$plot" | gnuplot
cat "$out/results.md"
echo "experiment: $out/results.csv, $out/results.md, $out/heldout_accuracy.png"
