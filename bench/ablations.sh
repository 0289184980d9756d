# The paper's Table 4 ablations of DeepSearch as `deepsearch run` switches, one place for the
# experiments that run them (sourced by bench/experiment.sh and bench/plateau_experiment.sh).
# shellcheck shell=bash disable=SC2034
declare -A ablation_switch=(
  [uct_backtrace]="--set search.backtrace=uct"             # UCT from the root, not the global frontier
  [vanilla_q]="--set search.q_update=vanilla"              # no constrained q update
  [std_advantages]="--set learner.train.advantage_norm=mean_std"  # divide by the std too
  [random_negative]="--set search.negative_choice=random"  # not the most confident negative
)
