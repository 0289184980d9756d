#!/usr/bin/env bash
# The paper's claim in its own regime: does search during training move a policy that plain
# RLVR has already plateaued, where more RLVR does not? (DeepSearch, arXiv 2509.25454, §4;
# issue "the paper's claim tested in its own regime".) Sized for two CPU cores, about an hour.
#
#   phase 0  warm start: `deepsearch run --warm-start-only` on TASK (four-number Countdown, one
#            equation per line, docs/TASKS.md): SFT_STEPS supervised steps of the tiny model on
#            worked solutions; TRAIN_PROBLEMS training problems and a pool of POOL held-out
#            problems, never trained on.
#   phase 1  plain GRPO from the warm start on the whole training set (no screening, one round:
#            no replay), evaluated every CHUNK steps on the held-out pool by 32 direct samples
#            per problem at T = 1.0. The policy has plateaued when two consecutive chunks each
#            gain less than PLATEAU_PASS1 points of pass@1 and less than PLATEAU_PASSK points of
#            pass@32; the run is then stopped (SIGTERM: it checkpoints) and its last checkpoint is
#            the plateau policy. At PHASE1_MAX_STEPS without a plateau the script says "not
#            plateaued" and goes on from the cap's policy.
#   phase 2  the hard sets, screened once with the plateau policy by SCREEN_K direct samples per
#            problem (a problem is hard with at most floor(MAX_PASS1 * SCREEN_K) correct, the
#            paper's Pass1@4 <= 25%): the training hard set from the training set (one round,
#            as the paper) and the held-out hard set from the held-out pool (never trained on);
#            then the plateau policy on the held-out hard set by 32 direct samples per problem at
#            T = 1.0 and 0.6, the common start of every branch.
#   phase 3  from the plateau policy, on the training hard set (grpo_all: the whole training
#            set), for each of SEEDS (the learner's lease and shuffle seeds):
#              deepsearch     the method, STEPS training steps (16 problems x 8 leaves each)
#              grpo_samples   plain GRPO, the same STEPS steps: as many training samples
#              grpo_tokens    plain GRPO until its steps have generated as many response tokens
#                             as the same seed's DeepSearch run (each sampled token once)
#              grpo_all       plain GRPO on the whole training set, as in phase 1 (no
#                             screening), for the same generated tokens: more of the RLVR that
#                             plateaued
#            and, as switches (ABLATIONS), the paper's Table 4 ablations of DeepSearch with
#            STEPS steps: uct_backtrace, vanilla_q, std_advantages, random_negative.
#            Every run is evaluated EVAL_POINTS + 1 times on the held-out hard set: 32 direct
#            samples per problem at T = 1.0 and T = 0.6, then a search tree of 8 leaves.
#
# Settings shared by every arm (this machine's scale, not the paper's; none differs between
# arms): the tiny model, learning rate 5e-5 (configs/run.yaml), responses <= MAX_RESPONSE_TOKENS
# tokens, 8-token nodes and depth <= 8, 16 problems x 8 trajectories per step, one round (no
# re-screening, no replay buffer). The paper's search constants are the defaults.
#
# Decision rule, fixed before any run: DeepSearch supports the claim only if its final held-out
# direct pass@1 (T = 1.0) beats grpo_tokens' in every seed and the mean gain over seeds is above
# 1 point. results.md states the verdict that rule gives.
#
#   bench/plateau_experiment.sh [OUT]
#     TASK=countdown:n=4 SFT_STEPS=1200 MAX_RESPONSE_TOKENS=96 TRAIN_PROBLEMS=2048 POOL=300
#     CHUNK=50 PHASE1_MAX_STEPS=1000 PLATEAU_PASS1=1 PLATEAU_PASSK=2 SCREEN_K=4 MAX_PASS1=0.25
#     STEPS=100 EVAL_POINTS=4 SEEDS="1 2 3" ABLATIONS=""
#
# Writes OUT/warm-start, OUT/phase1-grpo (a run directory), OUT/plateau-model, OUT/phase2/
# (screenings and the two hard sets), OUT/seed-<s>/<arm>/ (run directories), OUT/results.csv
# (every phase 3 evaluation), OUT/phase1.csv, OUT/results.md (the tables and the verdict),
# OUT/plateau.png (phase 1) and OUT/branches.png (phase 3). Finished pieces are not run again,
# so an interrupted experiment resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-plateau-experiment}"
task="${TASK:-countdown:n=4}"
sft_steps="${SFT_STEPS:-1200}"
max_response="${MAX_RESPONSE_TOKENS:-96}"
train_problems="${TRAIN_PROBLEMS:-2048}"
pool="${POOL:-300}"
chunk="${CHUNK:-50}"
phase1_cap="${PHASE1_MAX_STEPS:-1000}"
plateau_pass1="${PLATEAU_PASS1:-1}"
plateau_passk="${PLATEAU_PASSK:-2}"
screen_k="${SCREEN_K:-4}"
max_pass1="${MAX_PASS1:-0.25}"
steps="${STEPS:-100}"
eval_points="${EVAL_POINTS:-4}"
read -r -a seeds <<< "${SEEDS:-1 2 3}"
read -r -a ablations <<< "${ABLATIONS:-}"
bin="${DEEPSEARCH:-build/cli/deepsearch}"
[[ -x "$bin" ]] || { echo "plateau: $bin not built (cmake --build build --target deepsearch)" >&2; exit 1; }
for tool in jq gnuplot; do
  command -v "$tool" > /dev/null || { echo "plateau: $tool not found (scripts/setup.sh installs it)" >&2; exit 1; }
done

# shellcheck source=bench/experiment_lib.sh
source bench/experiment_lib.sh
declare -A switch=([deepsearch]="" [grpo_samples]="--set learner.program.algorithm=grpo"
                   [grpo_tokens]="--set learner.program.algorithm=grpo"
                   [grpo_all]="--set learner.program.algorithm=grpo")
for a in "${ablations[@]}"; do
  [[ -v "ablation_switch[$a]" ]] ||
    { echo "plateau: unknown ablation '$a' (one of: ${!ablation_switch[*]})" >&2; exit 2; }
  switch[$a]="${ablation_switch[$a]}"
done
arms=(deepsearch grpo_samples grpo_tokens grpo_all "${ablations[@]}")

log() { echo "plateau: $*"; }
# The settings every run shares: the task, the data, the scale.
common=(--set "run.task=$task" --set "run.sft_steps=$sft_steps" --set "run.train_problems=$train_problems"
        --set "run.heldout_problems=$pool" --set "search.max_response_tokens=$max_response" --set run.seed=1)
# A run directory that starts from MODEL with the training set TRAIN and the held-out set HELDOUT.
seed_dir() {
  local dir="$1" model="$2" train="$3" heldout="$4"
  [[ -d "$dir/sft-model" ]] && return 0
  mkdir -p "$dir/data"
  cp -r "$out/warm-start/init-model" "$dir/"
  cp -r "$model" "$dir/sft-model"
  cp "$train" "$dir/data/train.jsonl"
  cp "$heldout" "$dir/data/heldout.jsonl"
}
# The direct T = 1.0 evaluations of a run directory: step,generated_tokens,pass1,pass_at_n.
direct_rows() {
  awk -F, -v e="${2:-direct-t1.0}" 'NR > 1 && $6 == e { print $1 "," $2 "," $11 "," $13 }' "$1/metrics/eval.csv" |
    sort -t, -k1,1n
}
# The step at which the rows on stdin (direct_rows) show the plateau, or nothing.
plateau_step() {
  awk -F, -v g1="$plateau_pass1" -v gk="$plateau_passk" '
    { if (NR > 1) { flat = (100 * ($3 - p1) < g1 && 100 * ($4 - pk) < gk)
                    if (flat && prev_flat) { print $1; exit }
                    prev_flat = flat }
      p1 = $3; pk = $4 }'
}

# ---- phase 0: the warm start ---------------------------------------------------------------
ws="$out/warm-start"
if [[ ! -f "$ws/sft-model/config.json" ]]; then
  log "phase 0: warm start, $sft_steps supervised steps on $task ($ws)"
  "$bin" run --dir "$ws" "${common[@]}" --warm-start-only
fi

# ---- phase 1: plain GRPO until the held-out accuracy stops improving ------------------------
p1="$out/phase1-grpo"
plateau_model="$out/plateau-model"
if [[ ! -f "$plateau_model/config.json" ]]; then
  seed_dir "$p1" "$ws/sft-model" "$ws/data/train.jsonl" "$ws/data/heldout.jsonl"
  phase1_set=(--set learner.program.algorithm=grpo --set learner.program.screen=false
              --set "learner.program.steps_per_round=$phase1_cap" --set learner.program.max_rounds=1
              --set "learner.program.max_steps=$phase1_cap" --set "run.eval_every=$chunk"
              --set run.eval_samples=0 --set "run.eval_temperatures=[1.0]")
  log "phase 1: plain GRPO from the warm start, held-out every $chunk steps, at most $phase1_cap steps ($p1)"
  start=$SECONDS
  "$bin" run --dir "$p1" "${common[@]}" "${phase1_set[@]}" &
  pid=$!
  at=""
  while kill -0 "$pid" 2> /dev/null; do
    sleep 2
    [[ -f "$p1/metrics/eval.csv" ]] || continue
    at=$(direct_rows "$p1" | plateau_step)
    if [[ -n "$at" ]]; then
      log "phase 1: plateau at step $at; stopping the run (SIGTERM: it checkpoints)"
      kill -TERM "$pid"
      break
    fi
  done
  rc=0
  wait "$pid" || rc=$?
  echo "$((SECONDS - start))" >> "$p1/wall_seconds"
  at=$(direct_rows "$p1" | plateau_step)
  if [[ -n "$at" ]]; then
    [[ $rc -eq 0 || $rc -eq 130 ]] || { log "phase 1: the run failed (exit $rc)"; exit 1; }
    echo "plateaued at step $at" > "$p1/plateau.txt"
  else
    [[ $rc -eq 0 ]] || { log "phase 1: the run failed (exit $rc)"; exit 1; }
    echo "not plateaued: $phase1_cap steps (the cap)" > "$p1/plateau.txt"
  fi
  # The learner's last checkpoint: the plateau step or a few steps past it (the evaluation runs
  # beside training). Phase 3 measures it again at its step 0.
  "$bin" export --state-dir "$p1/learner" --out "$plateau_model.partial" --dtype float32
  cp "$p1/learner/checkpoints/LATEST" "$plateau_model.partial/FROM_CHECKPOINT"
  rm -rf "$plateau_model"
  mv "$plateau_model.partial" "$plateau_model"
fi
log "phase 1: $(cat "$p1/plateau.txt"); plateau policy $plateau_model (checkpoint $(cat "$plateau_model/FROM_CHECKPOINT"))"
direct_rows "$p1" > "$out/phase1.csv"

# ---- phase 2: the hard sets, screened once with the plateau policy --------------------------
p2="$out/phase2"
mkdir -p "$p2"
max_correct=$(hard_max_correct "$screen_k" "$max_pass1")
screen() {  # screen NAME PROBLEMS SEED: OUT/phase2/NAME_hard.jsonl
  local name="$1" problems="$2" seed="$3"
  [[ -f "$p2/${name}_hard.jsonl" ]] && return 0
  log "phase 2: screening $(wc -l < "$problems") $name problems, $screen_k direct samples each"
  screen_hard "$bin" "$plateau_model" "$problems" "$screen_k" "$max_pass1" "$seed" "$p1/config.yaml" \
    "$p2/${name}_screen.jsonl" "$p2/${name}_hard.jsonl"
}
screen train "$ws/data/train.jsonl" 2000003
screen heldout "$ws/data/heldout.jsonl" 3000017
screening_tokens=$(cat "$p2"/*_screen.jsonl | jq -s 'map(.generated_tokens) | add')
# The plateau policy itself on the held-out hard set, as every run evaluates (32 direct samples,
# T = 1.0 and 0.6): the common start of phase 3 (a run's own step-0 evaluation may see the
# weights of its first steps, since evaluations run beside training).
for t in 1.0 0.6; do
  [[ -f "$p2/start_t$t.jsonl" ]] && continue
  "$bin" solve --model "$plateau_model" --problems "$p2/heldout_hard.jsonl" --mode rollout -k 32 \
    --seed 4000037 --config "$p1/config.yaml" --set "sampling.temperature=$t" --out "$p2/start_t$t.jsonl.tmp"
  mv "$p2/start_t$t.jsonl.tmp" "$p2/start_t$t.jsonl"
done
start_of() {  # pass@1 or pass@32 of the plateau policy at temperature T: start_of T pass1|passk
  jq -s --arg m "$2" 'if $m == "pass1" then (map(.correct_samples) | add) / (map(.samples) | add)
                      else (map(select(.correct_samples > 0)) | length) / length end' "$p2/start_t$1.jsonl"
}
log "phase 2: training hard set $(wc -l < "$p2/train_hard.jsonl") of $train_problems, held-out hard set" \
    "$(wc -l < "$p2/heldout_hard.jsonl") of $pool ($screening_tokens tokens of screening)"

# ---- phase 3: the branches from the plateau policy ------------------------------------------
phase3_set=(--set learner.program.screen=false --set learner.program.max_rounds=1
            --set learner.program.steps_per_round=1000000 --set "run.eval_temperatures=[1.0,0.6]"
            --set run.eval_samples=8)
# The training job's generated tokens (each sampled token once) and steps of a finished run.
run_tokens() { jq -s 'last | .generated_tokens - .screening_tokens' "$1/metrics/progress.jsonl"; }
run_steps() { jq -s 'last | .step' "$1/metrics/progress.jsonl"; }
for seed in "${seeds[@]}"; do
  for arm in "${arms[@]}"; do
    dir="$out/seed-$seed/$arm"
    if [[ -f "$dir/summary.txt" ]]; then log "seed $seed $arm done already ($dir)"; continue; fi
    train="$p2/train_hard.jsonl"
    [[ "$arm" == grpo_all ]] && train="$ws/data/train.jsonl"
    seed_dir "$dir" "$plateau_model" "$train" "$p2/heldout_hard.jsonl"
    budget=(--set "learner.program.max_steps=$steps" --set "run.eval_every=$(( (steps + eval_points - 1) / eval_points ))")
    if [[ "$arm" == grpo_tokens || "$arm" == grpo_all ]]; then
      ds="$out/seed-$seed/deepsearch" gs="$out/seed-$seed/grpo_samples"
      tokens=$(run_tokens "$ds")
      # The step count that budget takes at grpo_samples' rate, for the evaluation cadence; the
      # budget ends the job (after the step that reaches it), 20x STEPS is only a cap.
      expect=$(( tokens * $(run_steps "$gs") / $(run_tokens "$gs") ))
      budget=(--set "learner.program.max_generated_tokens=$tokens" --set "learner.program.max_steps=$((20 * steps))"
              --set "run.eval_every=$(( (expect + eval_points - 1) / eval_points ))")
    fi
    read -r -a arm_set <<< "${switch[$arm]}"
    set_args=("${common[@]}" "${phase3_set[@]}" --set "learner.seed=$seed" --set "learner.program.seed=$seed"
              "${budget[@]}" "${arm_set[@]}")
    log "seed $seed $arm: $bin run --dir $dir ${set_args[*]}"
    start=$SECONDS
    "$bin" run --dir "$dir" "${set_args[@]}"
    echo "$((SECONDS - start))" > "$dir/wall_seconds"
  done
done

# ---- tables, verdict and plots --------------------------------------------------------------
{
  echo "seed,arm,step,generated_tokens,trained_tokens,eval,pass1,pass_at_n"
  for seed in "${seeds[@]}"; do
    for arm in "${arms[@]}"; do
      awk -F, -v s="$seed" -v a="$arm" 'NR > 1 { print s "," a "," $1 "," $2 "," $4 "," $6 "," $11 "," $13 }' \
        "$out/seed-$seed/$arm/metrics/eval.csv" | sort -t, -k6,6 -k3,3n
    done
  done
} > "$out/results.csv"

s1=$(start_of 1.0 pass1) k1=$(start_of 1.0 passk) s6=$(start_of 0.6 pass1) k6=$(start_of 0.6 passk)
{
  echo "## Phase 1: plain GRPO from the warm start ($task, held-out pool of $pool problems)"
  echo
  echo "$(cat "$p1/plateau.txt"); the plateau policy is the learner's checkpoint $(cat "$plateau_model/FROM_CHECKPOINT")."
  echo
  echo "| step | generated tokens | direct pass@1 (T = 1.0) | pass@32 |"
  echo "|---|---|---|---|"
  awk -F, '{ printf "| %d | %d | %.1f%% | %.1f%% |\n", $1, $2, 100 * $3, 100 * $4 }' "$out/phase1.csv"
  echo
  echo "## Phase 2: the hard sets, screened with the plateau policy ($screen_k direct samples, at most $max_correct correct)"
  echo
  echo "Training hard set: $(wc -l < "$p2/train_hard.jsonl") of $train_problems problems; held-out hard set:" \
       "$(wc -l < "$p2/heldout_hard.jsonl") of $pool (never trained on); $screening_tokens tokens of screening."
  echo
  echo "## Phase 3: from the plateau policy, on the training hard set (grpo_all: the whole training set)"
  echo
  printf "The plateau policy on the held-out hard set (\`deepsearch solve --mode rollout -k 32\`): direct pass@1 %.1f%%\n" "$(jq -n "100 * $s1")"
  printf '(pass@32 %.0f%%) at T = 1.0, %.1f%% (pass@32 %.0f%%) at T = 0.6: the start of every run.\n' \
    "$(jq -n "100 * $k1")" "$(jq -n "100 * $s6")" "$(jq -n "100 * $k6")"
  echo
  echo "Final held-out hard-set accuracy of each run (after its last step):"
  echo
  echo "| seed | arm | steps | generated tokens | trained tokens | direct pass@1, T = 1.0 | T = 0.6 | pass@32, T = 1.0 | tree: correct leaves (pass@8) | wall |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for seed in "${seeds[@]}"; do
    for arm in "${arms[@]}"; do
      awk -F, -v s="$seed" -v a="$arm" -v wall="$(cat "$out/seed-$seed/$arm/wall_seconds" 2> /dev/null || echo '?')" '
        $1 == s && $2 == a {
          last[$6] = $7; lastk[$6] = $8
          if ($6 == "direct-t1.0") { step = $3; gen = $4; trained = $5 }
        }
        END {
          printf "| %s | %s | %d | %d | %d | %.1f%% | %.1f%% | %.0f%% | %.1f%% (%.0f%%) | %ss |\n",
                 s, a, step, gen, trained, 100 * last["direct-t1.0"], 100 * last["direct-t0.6"],
                 100 * lastk["direct-t1.0"], 100 * last["tree"], 100 * lastk["tree"], wall
        }' "$out/results.csv"
    done
  done
  echo
  echo "Mean over seeds, and the change in held-out direct pass@1 from the plateau policy:"
  echo
  echo "| arm | seeds | final pass@1 T = 1.0, mean (min - max) | change, points (min - max) | final pass@1 T = 0.6, mean | change, points | generated tokens, mean |"
  echo "|---|---|---|---|---|---|---|"
  for arm in "${arms[@]}"; do
    awk -F, -v a="$arm" -v s1="$s1" -v s6="$s6" '
      $2 == a && $6 == "direct-t1.0" { last[$1] = $7; tok[$1] = $4 }
      $2 == a && $6 == "direct-t0.6" { last6[$1] = $7 }
      END {
        lo = 1e9; hi = -1e9
        for (k in last) {
          n++; sl += last[k]; s6l += last6[k]; st += tok[k]
          if (last[k] < lo) lo = last[k]; if (last[k] > hi) hi = last[k]
        }
        printf "| %s | %d | %.1f%% (%.1f - %.1f) | %+.1f (%+.1f - %+.1f) | %.1f%% | %+.1f | %d |\n", a, n,
               100 * sl / n, 100 * lo, 100 * hi, 100 * (sl / n - s1), 100 * (lo - s1), 100 * (hi - s1),
               100 * s6l / n, 100 * (s6l / n - s6), st / n
      }' "$out/results.csv"
  done
  echo
  echo "Training steps: the share of groups (one problem's trajectories) with no correct trajectory, and the"
  echo "mean advantage of their tokens (GRPO gives such a group 0; Tree-GRPO gives a non-leaf token 1 + tanh(q) > 0),"
  echo "over every step of every seed (the learners' logs):"
  echo
  echo "| arm | steps | all-wrong groups | their mean advantage |"
  echo "|---|---|---|---|"
  for arm in "${arms[@]}"; do
    for seed in "${seeds[@]}"; do cat "$out/seed-$seed/$arm/logs/learner.log"; done |
      sed -nE 's/.*all-wrong groups ([0-9]+) of ([0-9]+) \(mean advantage (-?[0-9.]+)\).*/\1 \2 \3/p' |
      awk -v a="$arm" '{ n++; w += $1; g += $2; if ($1 > 0) { m += $3; k++ } }
        END { v = k ? m / k : 0; if (v > -0.0005 && v < 0.0005) v = 0  # no "-0.000"
              printf "| %s | %d | %.1f%% | %+.3f |\n", a, n, 100 * w / g, v }'
  done
  echo
  echo "## Verdict (the rule fixed before the runs)"
  echo
  awk -F, -v order="${seeds[*]}" '
    $6 == "direct-t1.0" && ($2 == "deepsearch" || $2 == "grpo_tokens") { last[$1 "," $2] = $7 }
    END {
      all = 1
      m = split(order, seeds, " ")
      for (i = 1; i <= m; i++) {
        s = seeds[i]
        g = 100 * (last[s ",deepsearch"] - last[s ",grpo_tokens"]); sum += g; n++
        if (g <= 0) all = 0; else ahead++
        printf "- seed %s: DeepSearch %.1f%%, GRPO at equal generated tokens %.1f%%: %+.1f points\n",
               s, 100 * last[s ",deepsearch"], 100 * last[s ",grpo_tokens"], g
      }
      printf "\nMean gain %+.1f points of direct pass@1; DeepSearch ahead in %d of %d seeds. ", sum / n, ahead, n
      if (all && sum / n > 1) print "**The result supports the claim.**"
      else print "**The result does not support the claim** (the rule asks for a gain in every seed and a mean above 1 point)."
    }' "$out/results.csv"
} > "$out/results.md"

# Phase 1's curve; phase 3's branches (the mean over seeds of each arm's i-th evaluation).
gnuplot <<EOF
set terminal pngcairo size 1000,550 noenhanced font 'sans,11'
set output '$out/plateau.png'
set title 'Phase 1: plain GRPO from the warm start ($task, $pool held-out problems, 32 direct samples at T = 1.0)'
set xlabel 'training step'
set ylabel 'held-out pass@1'
set y2label 'held-out pass@32'
set ytics nomirror
set y2tics
set grid
set key bottom right
set datafile separator ','
plot '$out/phase1.csv' using 1:3 axes x1y1 with linespoints lw 2 title 'pass@1', \
     '' using 1:4 axes x1y2 with linespoints lw 2 dt 2 title 'pass@32'
EOF
# Point i < EVAL_POINTS is each run's i-th evaluation, the last point each run's final one (a run
# can add an evaluation at its end when its last step is not a multiple of the cadence).
for arm in "${arms[@]}"; do
  for e in direct-t1.0 direct-t0.6; do
    awk -F, -v a="$arm" -v e="$e" -v last="$eval_points" '
      $2 == a && $6 == e { i = seen[$1]++; tok[$1, i] = $4; acc[$1, i] = $7 }
      END {
        for (s in seen) for (i = 0; i <= last; i++) {
          j = i < last ? i : seen[s] - 1
          if (j >= seen[s]) continue
          n[i]++; t[i] += tok[s, j]; p[i] += acc[s, j]
        }
        for (i in n) printf "%d,%f,%f\n", i, t[i] / n[i] / 1e6, p[i] / n[i]
      }' "$out/results.csv" | sort -t, -k1,1n > "$out/mean_${arm}_$e.csv"
  done
done
plot1="" plot2="" sep=""
for arm in "${arms[@]}"; do
  plot1+="$sep'$out/mean_${arm}_direct-t1.0.csv' using 2:3 with linespoints lw 2 title '$arm'"
  plot2+="$sep'$out/mean_${arm}_direct-t0.6.csv' using 2:3 with linespoints lw 2 title '$arm'"
  sep=", "
done
gnuplot <<EOF
set terminal pngcairo size 1300,550 noenhanced font 'sans,11'
set output '$out/branches.png'
set multiplot layout 1,2 title 'Phase 3 from the plateau policy: held-out hard set ($(wc -l < "$p2/heldout_hard.jsonl") problems), direct pass@1, mean of ${#seeds[@]} seed(s)'
set xlabel 'generated tokens of the training steps (millions)'
set ylabel 'held-out pass@1'
set grid
set key bottom right
set datafile separator ','
set title 'T = 1.0'
plot $plot1
set title 'T = 0.6'
plot $plot2
unset multiplot
EOF
cat "$out/results.md"
log "$out/results.md, $out/results.csv, $out/plateau.png, $out/branches.png"
