# What the experiments share (sourced by bench/experiment.sh and bench/plateau_experiment.sh).
# shellcheck shell=bash disable=SC2034

# The paper's Table 4 ablations of DeepSearch as `deepsearch run` switches.
declare -A ablation_switch=(
  [uct_backtrace]="--set search.backtrace=uct"             # UCT from the root, not the global frontier
  [vanilla_q]="--set search.q_update=vanilla"              # no constrained q update
  [std_advantages]="--set learner.train.advantage_norm=mean_std"  # divide by the std too
  [random_negative]="--set search.negative_choice=random"  # not the most confident negative
)

# The most correct of K direct samples a hard problem may have: floor(MAX_PASS1 * K), the
# learner's rule for the training hard subset (Pass1@4 <= 25%: at most 1 of 4).
#   hard_max_correct K MAX_PASS1
hard_max_correct() { awk -v k="$1" -v f="$2" 'BEGIN { printf "%d", k * f + 1e-9 }'; }

# Screens PROBLEMS with K direct samples each from MODEL (`deepsearch solve --mode rollout`, its
# own SEED) and writes the hard ones, as hard_max_correct counts them, to HARD_OUT; the
# per-problem results go to SCREEN_OUT.
#   screen_hard BIN MODEL PROBLEMS K MAX_PASS1 SEED CONFIG SCREEN_OUT HARD_OUT
screen_hard() {
  local bin="$1" model="$2" problems="$3" k="$4" max_pass1="$5" seed="$6" config="$7"
  local screen_out="$8" hard_out="$9" max_correct
  "$bin" solve --model "$model" --problems "$problems" --mode rollout -k "$k" --seed "$seed" \
    --config "$config" --out "$screen_out"
  max_correct=$(hard_max_correct "$k" "$max_pass1")
  jq -r --argjson max "$max_correct" 'select(.correct_samples <= $max) | "\"id\":\"" + .id + "\""' \
    "$screen_out" > "${hard_out%.jsonl}_ids.txt"
  grep -F -f "${hard_out%.jsonl}_ids.txt" "$problems" > "$hard_out.tmp"
  mv "$hard_out.tmp" "$hard_out"
}
