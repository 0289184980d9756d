// Tests of the data-parallel reducers. Multi-rank cases run real process groups on loopback:
// the test re-executes its own binary (fork + exec, so no torch or Gloo thread crosses a
// fork) once per rank with --data_parallel_worker=<scenario>; main() below dispatches those
// invocations to the worker scenarios instead of GoogleTest. Workers check what they can
// themselves (exit code 0 = all good, failures on stderr, captured in a log file) and write
// the parameters of the SGD and Trainer scenarios to a file the test compares with a one-process
// step.
#include "learner/data_parallel.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "trainer/trainer.h"

#include "common/core/rng.h"
#include "common/model/model_dir.h"
#include "common/model/qwen2_model.h"
#include "common/model/weight_export.h"
#include "learner/learner.h"
#include "tests/free_port.h"
#include "tests/learner/learner_testing.h"

namespace deepsearch {
namespace {

using ::testing::HasSubstr;

constexpr char kWorkerFlag[] = "--data_parallel_worker=";

// ---- The shared pieces of the SGD step ------------------------------------------------

Qwen2Config TinyConfig() {
  Qwen2Config c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  c.initializer_range = 0.2;  // large weights: large gradients, visible differences
  return c;
}

constexpr uint64_t kSeed = 7;
constexpr double kLearningRate = 0.5;

// The whole batch: 6 sequences of different lengths. Rank 0 takes the first 2 (12 target
// tokens), rank 1 the other 4 (18 target tokens).
std::vector<std::vector<int64_t>> Batch() {
  const std::vector<int> lengths = {5, 9, 3, 7, 4, 8};
  std::vector<std::vector<int64_t>> batch;
  for (size_t i = 0; i < lengths.size(); ++i) {
    std::vector<int64_t> seq;
    for (int j = 0; j < lengths[i]; ++j)
      seq.push_back((static_cast<int64_t>(i) * 7 + j * 13 + 3) % 64);
    batch.push_back(seq);
  }
  return batch;
}

std::vector<std::vector<int64_t>> Slice(const std::vector<std::vector<int64_t>>& batch,
                                        size_t begin, size_t end) {
  return {batch.begin() + static_cast<std::ptrdiff_t>(begin),
          batch.begin() + static_cast<std::ptrdiff_t>(end)};
}

std::vector<std::vector<int64_t>> RankShare(int rank) {
  const auto batch = Batch();
  return rank == 0 ? Slice(batch, 0, 2) : Slice(batch, 2, batch.size());
}

std::unique_ptr<Qwen2Model> MakeModel(uint64_t seed) {
  auto model = Qwen2Model::Create(TinyConfig(), {at::kFloat, at::kCPU});
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    std::abort();
  }
  (*model)->InitializeRandom(seed);
  for (at::Tensor p : (*model)->Parameters()) p.requires_grad_(true);
  return *std::move(model);
}

// Sum over the sequences' next-token cross-entropies (a graph for backward), and the number
// of target tokens.
std::pair<at::Tensor, int64_t> NextTokenLossSum(const Qwen2Model& model,
                                                const std::vector<std::vector<int64_t>>& seqs) {
  int64_t longest = 0;
  for (const auto& s : seqs) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
  const int64_t batch = static_cast<int64_t>(seqs.size());
  std::vector<int64_t> ids(static_cast<size_t>(batch * longest), 0);
  std::vector<int64_t> lengths;
  std::vector<float> mask(static_cast<size_t>(batch * (longest - 1)), 0.0f);
  int64_t tokens = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& s = seqs[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(s.size());
    std::copy(s.begin(), s.end(), ids.begin() + b * longest);
    std::fill_n(mask.begin() + b * (longest - 1), n - 1, 1.0f);
    lengths.push_back(n);
    tokens += n - 1;
  }
  const at::Tensor ids_t = at::tensor(ids).reshape({batch, longest});
  const at::Tensor mask_t = at::tensor(mask).reshape({batch, longest - 1});
  const at::Tensor logits = model.Forward(ids_t, at::tensor(lengths));  // [B, T, V]
  const at::Tensor logp = at::log_softmax(logits.narrow(1, 0, longest - 1), -1);
  const at::Tensor targets = ids_t.narrow(1, 1, longest - 1).unsqueeze(-1);
  const at::Tensor nll = -logp.gather(-1, targets).squeeze(-1);
  return {(nll * mask_t).sum(), tokens};
}

void SgdStep(const Qwen2Model& model) {
  c10::NoGradGuard no_grad;
  for (at::Tensor p : model.Parameters()) p.sub_(p.grad() * kLearningRate);
}

std::vector<float> FlatParameters(const Qwen2Model& model) {
  std::vector<float> out;
  for (const at::Tensor& p : model.Parameters()) {
    at::Tensor c = p.detach().contiguous();
    const float* data = c.data_ptr<float>();
    out.insert(out.end(), data, data + c.numel());
  }
  return out;
}

// ---- The shared pieces of the Trainer step ---------------------------------------------

constexpr int64_t kVocabLimit = 48;  // response tokens below it; the model has 64 rows

TrainerConfig DataParallelTrainerConfig() {
  TrainerConfig c;
  c.lr = 1e-2;
  c.warmup_steps = 0;         // the first step at the full LR
  c.mini_batches = 2;         // two optimizer steps: the second starts from reduced moments
  c.micro_batch_tokens = 24;  // several micro-batches per mini-batch, packed differently
  c.vocab_limit = kVocabLimit;
  c.decoupled = true;  // behaviour log-probs where the sequences have them
  c.grad_clip = 0.5;   // the global norm, after the all-reduce
  // AdamW's first update is about lr * g / (|g| + eps): with eps at 1e-8 a gradient entry
  // that float rounding leaves at 1e-9 on one side and -1e-9 on the other would move by
  // +-lr. A larger eps keeps the comparison about the gradients, not about their noise.
  c.adam_eps = 1e-4;
  return c;
}

// Rank `rank`'s share of the Trainer batch: 6 scored sequences in two advantage groups of its
// own (groups never straddle ranks: advantages are per group), of mixed lengths, half with
// behaviour log-probs.
std::vector<TrainSequence> TrainerShare(int rank) {
  Rng rng(100 + static_cast<uint64_t>(rank));
  std::vector<TrainSequence> share;
  for (int i = 0; i < 6; ++i) {
    TrainSequence s;
    s.group_id = absl::StrCat("rank", rank, "_tree", i % 2);
    const int64_t prompt = rng.UniformInt(2, 5);
    const int64_t response = rng.UniformInt(2, 9);
    for (int64_t j = 0; j < prompt; ++j)
      s.prompt_tokens.push_back(static_cast<int32_t>(rng.UniformInt(0, 63)));
    for (int64_t j = 0; j < response; ++j) {
      s.response_tokens.push_back(static_cast<int32_t>(rng.UniformInt(0, kVocabLimit - 1)));
      s.token_scores.push_back(static_cast<float>(rng.Uniform()));
      if (i % 2 == 0) s.behavior_logprobs.push_back(static_cast<float>(-3.5 + rng.Uniform()));
    }
    s.final_score = rng.Bernoulli(0.5) ? 1.0f : 0.0f;
    s.token_scores.back() = s.final_score;
    share.push_back(std::move(s));
  }
  return share;
}

// The whole batch as one process sees it. The trainer splits a batch in order into
// mini-batches by sequence count, so each of its mini-batches must be the union of the
// ranks' corresponding mini-batches: rank 0's first half, rank 1's first half, rank 0's
// second half, rank 1's second half.
std::vector<TrainSequence> TrainerWholeBatch() {
  const std::vector<TrainSequence> r0 = TrainerShare(0), r1 = TrainerShare(1);
  const std::ptrdiff_t half = static_cast<std::ptrdiff_t>(r0.size() / 2);
  std::vector<TrainSequence> whole;
  whole.insert(whole.end(), r0.begin(), r0.begin() + half);
  whole.insert(whole.end(), r1.begin(), r1.begin() + half);
  whole.insert(whole.end(), r0.begin() + half, r0.end());
  whole.insert(whole.end(), r1.begin() + half, r1.end());
  return whole;
}

// ---- Worker processes -----------------------------------------------------------------

struct WorkerArgs {
  std::string scenario;
  int rank = 0;
  int world_size = 2;
  std::string master;
  std::string out;
  std::string dir;  // the learner scenarios' model and state directories
};

// Failures of a worker's own checks; the exit code is 1 when there is any.
int worker_failures = 0;
void Expect(bool ok, const std::string& what) {
  if (ok) return;
  ++worker_failures;
  std::cerr << "CHECK FAILED: " << what << "\n";
}

bool AllClose(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && at::allclose(a.to(at::kDouble), b.to(at::kDouble), 0, 1e-12);
}

void WriteParameters(const Qwen2Model& model, const std::string& path) {
  const std::vector<float> flat = FlatParameters(model);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(flat.data()),
            static_cast<std::streamsize>(flat.size() * sizeof(float)));
  Expect(out.good(), "writing " + path);
}

std::unique_ptr<GradientReducer> Join(const WorkerArgs& args) {
  DataParallelConfig config;
  config.rank = args.rank;
  config.world_size = args.world_size;
  config.master = args.master;
  config.timeout = absl::Seconds(20);
  auto reducer = CreateProcessGroupReducer(config);
  if (!reducer.ok()) {
    std::cerr << "rank " << args.rank << ": " << reducer.status() << "\n";
    std::exit(2);
  }
  Expect((*reducer)->rank() == args.rank && (*reducer)->world_size() == args.world_size,
         "rank and world size");
  return *std::move(reducer);
}

void Collectives(const WorkerArgs& args) {
  auto reducer = Join(args);
  const double r = args.rank;

  // AllReduceMean over three dtypes, a view and a leaf that requires grad; in place.
  at::Tensor a = at::arange(6, at::kFloat).reshape({2, 3}) * (r + 1);
  at::Tensor a_alias = a;  // shares a's storage: the reduction must write into it
  at::Tensor b = at::full({4}, r * 10, at::kDouble);
  at::Tensor c = at::full({3}, r, at::kBFloat16);
  at::Tensor base = at::zeros({3, 2}, at::kFloat);
  at::Tensor d = base.t();  // a non-contiguous view
  d.fill_(r == 0 ? 1.0 : 4.0);
  at::Tensor leaf = at::full({2}, r + 2, at::kFloat).requires_grad_(true);
  std::vector<at::Tensor> tensors = {a, b, c, d, leaf};
  absl::Status s = reducer->AllReduceMean(tensors);
  Expect(s.ok(), absl::StrCat("AllReduceMean: ", s.ToString()));
  Expect(AllClose(a_alias, at::arange(6, at::kFloat).reshape({2, 3}) * 1.5), "mean of a");
  Expect(AllClose(b, at::full({4}, 5.0, at::kDouble)), "mean of b (float64)");
  Expect(c.scalar_type() == at::kBFloat16 && AllClose(c, at::full({3}, 0.5, at::kFloat)),
         "mean of c (bfloat16)");
  Expect(AllClose(base, at::full({3, 2}, 2.5, at::kFloat)), "mean through a transposed view");
  Expect(AllClose(leaf.detach(), at::full({2}, 2.5, at::kFloat)), "mean of a leaf");

  // An integer tensor is refused on this rank (before any collective, so on both).
  std::vector<at::Tensor> ints = {at::ones({2}, at::kLong)};
  s = reducer->AllReduceMean(ints);
  Expect(s.code() == absl::StatusCode::kInvalidArgument &&
             absl::StrContains(s.message(), absl::StrCat("rank ", args.rank)),
         absl::StrCat("integer AllReduceMean refused: ", s.ToString()));

  std::vector<double> values = {r + 1, 0.25 * r};
  s = reducer->AllReduceSum(values);
  Expect(s.ok() && values == std::vector<double>({3.0, 0.25}),
         absl::StrCat("AllReduceSum: ", s.ToString()));

  // Broadcast: rank 0's values everywhere, integer and parameter-like tensors included.
  at::Tensor e = at::full({5}, r + 7, at::kFloat);
  at::Tensor f = at::tensor({static_cast<int64_t>(r * 100 + 1), static_cast<int64_t>(r * 100 + 2)});
  at::Tensor g = at::full({2, 2}, r - 3, at::kFloat).requires_grad_(true);
  std::vector<at::Tensor> bcast = {e, f, g};
  s = reducer->Broadcast(bcast);
  Expect(s.ok(), absl::StrCat("Broadcast: ", s.ToString()));
  Expect(AllClose(e, at::full({5}, 7.0, at::kFloat)), "broadcast of e");
  Expect(at::equal(f, at::tensor({int64_t{1}, int64_t{2}})), "broadcast of f (int64)");
  Expect(AllClose(g.detach(), at::full({2, 2}, -3.0, at::kFloat)), "broadcast of g");

  // 3 + 5 tokens over 2 ranks: each rank scales its loss sum by 2 / 8.
  auto scale = TokenMeanLossScale(*reducer, args.rank == 0 ? 3 : 5);
  Expect(scale.ok() && *scale == 0.25, "TokenMeanLossScale");
}

// The model every data-parallel step starts from: each rank initialises its own (different
// seeds), then takes rank 0's weights, as a learner group does at start-up.
std::unique_ptr<Qwen2Model> StartingModel(GradientReducer& reducer) {
  auto model = MakeModel(reducer.rank() == 0 ? kSeed : kSeed + 1000);
  std::vector<at::Tensor> params = model->Parameters();
  const absl::Status s = reducer.Broadcast(params);
  Expect(s.ok(), absl::StrCat("Broadcast: ", s.ToString()));
  return model;
}

// The data-parallel step: different seeds, then rank 0's weights broadcast; each rank's loss
// sum scaled by world_size / global tokens; gradients all-reduced (mean); plain SGD.
void Sgd(const WorkerArgs& args) {
  auto reducer = Join(args);
  auto model = StartingModel(*reducer);
  auto [loss_sum, tokens] = NextTokenLossSum(*model, RankShare(args.rank));
  auto scale = TokenMeanLossScale(*reducer, tokens);
  Expect(scale.ok(), "TokenMeanLossScale");
  if (!scale.ok()) return;
  (loss_sum * *scale).backward();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : model->Parameters()) grads.push_back(p.grad());
  const absl::Status s = reducer->AllReduceMean(grads);
  Expect(s.ok(), absl::StrCat("AllReduceMean: ", s.ToString()));
  SgdStep(*model);
  WriteParameters(*model, args.out);
}

// The Trainer's data-parallel step: rank 1 starts from other weights, then takes rank 0's
// (Broadcast); each rank is handed the whole batch and trains its share (PlanStep), the
// trainer all-reducing token counts and gradients through TrainerConfig::reducer.
void TrainerStep(const WorkerArgs& args) {
  auto reducer = Join(args);
  auto model = StartingModel(*reducer);
  TrainerConfig config = DataParallelTrainerConfig();
  config.reducer = reducer.get();
  auto trainer = Trainer::Create(std::move(model), config);
  Expect(trainer.ok(), absl::StrCat("Trainer::Create: ", trainer.status().ToString()));
  if (!trainer.ok()) return;
  // Every rank is handed the whole batch and trains its share of each mini-batch.
  const std::vector<TrainSequence> whole = TrainerWholeBatch();
  auto stats = (*trainer)->Step(whole);
  Expect(stats.ok(), absl::StrCat("Trainer::Step: ", stats.status().ToString()));
  if (!stats.ok()) return;
  Expect(stats->optimizer_steps == 2, absl::StrCat(stats->optimizer_steps, " optimizer steps"));
  int64_t tokens = 0, sequences = 0;
  for (const std::vector<size_t>& mini :
       PlanStep(whole, config.advantage_norm, config.mini_batches, args.rank, 2).mini_batches) {
    for (size_t i : mini) tokens += static_cast<int64_t>(whole[i].response_tokens.size());
    sequences += static_cast<int64_t>(mini.size());
  }
  Expect(sequences > 0 && sequences < 12, absl::StrCat(sequences, " of 12 sequences on a rank"));
  Expect(stats->sequences == sequences, absl::StrCat(stats->sequences, " sequences"));
  Expect(stats->tokens == tokens, absl::StrCat(stats->tokens, " tokens, expected ", tokens));
  WriteParameters((*trainer)->model(), args.out);
}

// ---- The learner over two ranks ---------------------------------------------------------

// The learner's settings of the data-parallel learner runs: 3 problems, steps of 2 problems
// x 4 trajectories, 2 mini-batches, 3 training steps; no screening.
LearnerOptions DataParallelLearnerOptions(const std::string& dir) {
  LearnerOptions o;
  o.state_dir = dir + "/state";
  o.model = dir + "/model";
  o.program.batch_problems = 2;
  o.program.trajectories = 4;
  o.program.steps_per_round = 3;
  o.program.max_rounds = 1;
  o.program.screen = false;
  o.program.seed = 11;
  o.train.lr = 1e-3;
  o.train.warmup_steps = 0;
  o.train.mini_batches = 2;
  o.train.micro_batch_tokens = 16;
  o.train.adam_eps = 1e-4;  // see DataParallelTrainerConfig
  o.checkpoint_every = 0;
  o.seed = 5;
  return o;
}

// Drives a learner through a train job with the in-process actor of learner_testing.h;
// returns the trained weights (float32).
WeightSet TrainToTheEnd(Learner& learner) {
  auto job =
      learner.Submit(JobKind::kTrain, "dp", testing_learner::NumberedProblems(3), JobOptions{}, "");
  Expect(job.ok(), absl::StrCat("Submit: ", job.status().ToString()));
  for (int i = 0; i < 200 && job.ok(); ++i) {
    const absl::Status s = learner.Poll();
    Expect(s.ok(), absl::StrCat("Poll: ", s.ToString()));
    if (!s.ok()) break;
    absl::StatusOr<Job> now = learner.jobs().Get(job->id);
    if (IsTerminal(now->state)) {
      Expect(now->state == JobState::kSucceeded,
             absl::StrCat("job ended ", std::string(JobStateName(now->state)), ": ", now->error));
      break;
    }
    testing_learner::ServeLeases(learner);
  }
  Expect(learner.stats().training_steps == 3,
         absl::StrCat(learner.stats().training_steps, " training steps, expected 3"));
  return *learner.CurrentWeights();
}

// Rank 0 runs the learner (jobs, leases, steps, checkpoints); rank 1 joins as a training
// worker. Rank 0 writes the trained weights; rank 1 must end cleanly when rank 0 shuts down.
void LearnerRanks(const WorkerArgs& args) {
  auto reducer = Join(args);
  LearnerOptions options = DataParallelLearnerOptions(args.dir);
  if (args.rank != 0) {
    const absl::Status s = RunTrainingWorker(options, *reducer);
    Expect(s.ok(), absl::StrCat("RunTrainingWorker: ", s.ToString()));
    return;
  }
  auto learner = Learner::Create(options, nullptr, reducer.get());
  Expect(learner.ok(), absl::StrCat("Learner::Create: ", learner.status().ToString()));
  if (!learner.ok()) return;
  const WeightSet weights = TrainToTheEnd(**learner);
  std::ofstream out(args.out, std::ios::binary);
  out.write(weights.payload.data(), static_cast<std::streamsize>(weights.payload.size()));
  out.close();
  const absl::Status s = (*learner)->Shutdown();
  Expect(s.ok(), absl::StrCat("Shutdown: ", s.ToString()));
}

// Rank 1 is configured with other trainer settings: both ranks refuse to start, saying so.
void LearnerMismatch(const WorkerArgs& args) {
  auto reducer = Join(args);
  LearnerOptions options = DataParallelLearnerOptions(args.dir);
  absl::Status s;
  if (args.rank != 0) {
    options.train.mini_batches = 3;
    s = RunTrainingWorker(options, *reducer);
  } else {
    s = Learner::Create(options, nullptr, reducer.get()).status();
  }
  Expect(s.code() == absl::StatusCode::kFailedPrecondition &&
             absl::StrContains(s.message(), "1 rank(s) other trainer settings"),
         absl::StrCat("mismatch refused: ", s.ToString()));
}

// Rank 1 leaves right after a first collective; rank 0's next collective must fail with a
// status (no hang, no crash), and every later one at once.
void PeerExits(const WorkerArgs& args) {
  auto reducer = Join(args);
  std::vector<double> barrier = {1.0};
  absl::Status s = reducer->AllReduceSum(barrier);
  Expect(s.ok(), absl::StrCat("first collective: ", s.ToString()));
  if (args.rank == 1) {
    std::cout.flush();
    std::cerr.flush();
    _exit(worker_failures == 0 ? 0 : 1);  // no destructors: the process simply vanishes
  }
  std::vector<at::Tensor> grads = {at::ones({1000}, at::kFloat)};
  const absl::Time begin = absl::Now();
  s = reducer->AllReduceMean(grads);
  std::cerr << "rank 0 after the peer left: " << s << " (" << absl::Now() - begin << ")\n";
  Expect(!s.ok(), "a collective without the peer fails");
  Expect(
      absl::StrContains(s.message(), "rank 0 of 2") && absl::StrContains(s.message(), args.master),
      "the error names the rank and the master");
  s = reducer->AllReduceMean(grads);
  Expect(s.code() == absl::StatusCode::kFailedPrecondition,
         absl::StrCat("later collectives refused: ", s.ToString()));
}

int WorkerMain(int argc, char** argv) {
  WorkerArgs args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* prefix) { return arg.substr(std::string(prefix).size()); };
    if (absl::StartsWith(arg, kWorkerFlag)) args.scenario = value(kWorkerFlag);
    if (absl::StartsWith(arg, "--rank=")) args.rank = std::stoi(value("--rank="));
    if (absl::StartsWith(arg, "--world_size=")) args.world_size = std::stoi(value("--world_size="));
    if (absl::StartsWith(arg, "--master=")) args.master = value("--master=");
    if (absl::StartsWith(arg, "--out=")) args.out = value("--out=");
    if (absl::StartsWith(arg, "--dir=")) args.dir = value("--dir=");
  }
  at::set_num_threads(1);
  if (args.scenario == "collectives") {
    Collectives(args);
  } else if (args.scenario == "sgd") {
    Sgd(args);
  } else if (args.scenario == "trainer") {
    TrainerStep(args);
  } else if (args.scenario == "learner") {
    LearnerRanks(args);
  } else if (args.scenario == "learner_mismatch") {
    LearnerMismatch(args);
  } else if (args.scenario == "peer_exits") {
    PeerExits(args);
  } else {
    std::cerr << "unknown scenario " << args.scenario << "\n";
    return 2;
  }
  return worker_failures == 0 ? 0 : 1;
}

// ---- The test side ---------------------------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Worker {
  pid_t pid = -1;
  std::string log;
};

// Starts this binary as a worker, its stdout and stderr into `log`.
Worker Spawn(const std::vector<std::string>& args, const std::string& log) {
  // Everything the child needs is prepared before fork: after it, only exec-safe calls.
  std::vector<std::string> all = {"/proc/self/exe"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  EXPECT_GT(pid, 0);
  return {pid, log};
}

// Waits for the worker (killing it after `limit`) and returns its exit code, or -signal.
int Wait(const Worker& w, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  int status = 0;
  while (waitpid(w.pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(w.pid, SIGKILL);
      waitpid(w.pid, &status, 0);
      ADD_FAILURE() << "worker " << w.pid << " killed after " << limit;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Runs `scenario` on two ranks; expects both to exit 0. Returns what each rank wrote to its
// --out file (empty when nothing); the logs and output files are removed. Rank 1
// starts first; rank 0, which hosts the store, `master_delay` later.
std::vector<std::string> RunTwoRanks(const std::string& scenario,
                                     absl::Duration master_delay = absl::ZeroDuration(),
                                     const std::vector<std::string>& dirs = {}) {
  const std::string master = absl::StrCat("127.0.0.1:", FreePort());
  const std::string dir = testing::TempDir();
  const std::string tag = absl::StrCat(scenario, "_", getpid());
  std::vector<Worker> workers(2);
  std::vector<std::string> outs(2);
  for (int rank : {1, 0}) {
    if (rank == 0) absl::SleepFor(master_delay);
    const std::string base = absl::StrCat(dir, "/dp_", tag, "_rank", rank);
    outs[static_cast<size_t>(rank)] = base + ".bin";
    workers[static_cast<size_t>(rank)] = Spawn(
        {absl::StrCat(kWorkerFlag, scenario), absl::StrCat("--rank=", rank), "--world_size=2",
         absl::StrCat("--master=", master), absl::StrCat("--out=", outs[static_cast<size_t>(rank)]),
         absl::StrCat("--dir=", dirs.empty() ? "" : dirs[static_cast<size_t>(rank)])},
        base + ".log");
  }
  std::vector<std::string> contents(2);
  for (size_t rank = 0; rank < 2; ++rank) {
    const int code = Wait(workers[rank], absl::Seconds(60));
    EXPECT_EQ(code, 0) << "rank " << rank << " of scenario " << scenario << ", log:\n"
                       << ReadFile(workers[rank].log);
    contents[rank] = ReadFile(outs[rank]);
    std::remove(workers[rank].log.c_str());
    std::remove(outs[rank].c_str());
  }
  return contents;
}

std::vector<float> AsFloats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

TEST(DataParallelConfigTest, ParsesAndValidates) {
  auto config = ParseConfigText<DataParallelConfig>(
      "rank: 3\nworld_size: 4\nmaster: \"10.1.2.3:29555\"\nbackend: gloo\ntimeout: 45s\n",
      "dp.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rank, 3);
  EXPECT_EQ(config->world_size, 4);
  EXPECT_EQ(config->master, "10.1.2.3:29555");
  EXPECT_EQ(config->timeout, absl::Seconds(45));

  for (const auto& [text, field] :
       std::vector<std::pair<std::string, std::string>>{{"rank: 4\nworld_size: 4\n", "rank"},
                                                        {"world_size: 0\n", "world_size"},
                                                        {"backend: mpi\n", "backend"},
                                                        {"master: somehost\n", "master"},
                                                        {"master: \"127.0.0.1:70000\"\n", "master"},
                                                        {"timeout: 0s\n", "timeout"}}) {
    auto bad = ParseConfigText<DataParallelConfig>(text, "dp.yaml");
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(field)) << text;
  }
}

// Configs built in code (not parsed) are checked again at creation, before any socket.
TEST(DataParallelConfigTest, CreationRefusesBadConfigs) {
  const std::vector<std::pair<std::function<void(DataParallelConfig&)>, std::string>> cases = {
      {[](DataParallelConfig& c) { c.master = "127.0.0.1:0"; }, "master"},
      {[](DataParallelConfig& c) { c.master = "no-port"; }, "master"},
      {[](DataParallelConfig& c) {
         c.rank = 2;
         c.world_size = 2;
       },
       "rank"},
      {[](DataParallelConfig& c) { c.rank = -1; }, "rank"},
      {[](DataParallelConfig& c) { c.world_size = 0; }, "world_size"},
      {[](DataParallelConfig& c) { c.backend = "mpi"; }, "backend"},
      {[](DataParallelConfig& c) { c.timeout = absl::ZeroDuration(); }, "timeout"},
  };
  for (const auto& [mutate, field] : cases) {
    DataParallelConfig config;
    mutate(config);
    for (auto* create : {&CreateProcessGroupReducer, &CreateGradientReducer}) {
      auto reducer = create(config);
      EXPECT_EQ(reducer.status().code(), absl::StatusCode::kInvalidArgument) << field;
      EXPECT_THAT(std::string(reducer.status().message()), HasSubstr(field));
    }
  }
}

TEST(DataParallelConfigTest, Documented) {
  EXPECT_FALSE(DocumentConfig(DataParallelConfig{}).empty());
}

TEST(DataParallelConfigTest, NcclNeedsCuda) {
#if defined(DEEPSEARCH_HAS_CUDA)
  GTEST_SKIP() << "built with CUDA";
#else
  DataParallelConfig config;
  config.backend = "nccl";
  config.world_size = 2;
  auto reducer = CreateProcessGroupReducer(config);
  EXPECT_EQ(reducer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(reducer.status().message(), HasSubstr("CUDA"));
  EXPECT_THAT(reducer.status().message(), HasSubstr("gloo"));
#endif
}

TEST(LocalReducerTest, IsTheIdentity) {
  auto reducer = CreateGradientReducer(DataParallelConfig{});
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  EXPECT_NE(dynamic_cast<LocalReducer*>(reducer->get()), nullptr);
  EXPECT_EQ((*reducer)->rank(), 0);
  EXPECT_EQ((*reducer)->world_size(), 1);
  std::vector<at::Tensor> tensors = {at::full({3}, 2.5)};
  ASSERT_TRUE((*reducer)->AllReduceMean(tensors).ok());
  ASSERT_TRUE((*reducer)->Broadcast(tensors).ok());
  EXPECT_TRUE(at::equal(tensors[0], at::full({3}, 2.5)));
  std::vector<double> values = {1.5, -2.0};
  ASSERT_TRUE((*reducer)->AllReduceSum(values).ok());
  EXPECT_EQ(values, std::vector<double>({1.5, -2.0}));

  auto scale = TokenMeanLossScale(**reducer, 8);
  ASSERT_TRUE(scale.ok());
  EXPECT_EQ(*scale, 0.125);
  EXPECT_EQ(TokenMeanLossScale(**reducer, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// A one-member Gloo group in this process: real collectives, identity results.
TEST(ProcessGroupReducerTest, OneRankGroup) {
  DataParallelConfig config;
  config.master = absl::StrCat("127.0.0.1:", FreePort());
  config.timeout = absl::Seconds(10);
  auto reducer = CreateProcessGroupReducer(config);
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  EXPECT_EQ(dynamic_cast<LocalReducer*>(reducer->get()), nullptr);
  std::vector<at::Tensor> tensors = {at::full({3}, 2.5), at::full({2}, 1.0, at::kDouble)};
  ASSERT_TRUE((*reducer)->AllReduceMean(tensors).ok());
  EXPECT_TRUE(at::equal(tensors[0], at::full({3}, 2.5)));
  std::vector<double> values = {4.0};
  ASSERT_TRUE((*reducer)->AllReduceSum(values).ok());
  EXPECT_EQ(values[0], 4.0);
  std::vector<at::Tensor> ints = {at::ones({2}, at::kLong)};
  EXPECT_EQ((*reducer)->AllReduceMean(ints).code(), absl::StatusCode::kInvalidArgument);
  std::vector<at::Tensor> undefined = {at::Tensor()};
  EXPECT_EQ((*reducer)->Broadcast(undefined).code(), absl::StatusCode::kInvalidArgument);
}

// Joins a 2-rank group as `rank` on a free port where no peer will ever come, with a 1s
// timeout; returns the error and how long it took.
struct LonelyJoin {
  absl::Status status;
  absl::Duration elapsed;
  std::string master;
};
LonelyJoin JoinAlone(int rank) {
  DataParallelConfig config;
  config.rank = rank;
  config.world_size = 2;
  config.master = absl::StrCat("127.0.0.1:", FreePort());
  config.timeout = absl::Seconds(1);
  const absl::Time begin = absl::Now();
  auto reducer = CreateProcessGroupReducer(config);
  return {reducer.status(), absl::Now() - begin, config.master};
}

TEST(ProcessGroupReducerTest, UnreachableMasterFailsWithinTheTimeout) {
  const LonelyJoin join = JoinAlone(1);
  EXPECT_EQ(join.status.code(), absl::StatusCode::kDeadlineExceeded) << join.status;
  EXPECT_THAT(std::string(join.status.message()), HasSubstr("rank 1 of 2"));
  EXPECT_THAT(std::string(join.status.message()), HasSubstr("connecting to the store"));
  EXPECT_THAT(std::string(join.status.message()), HasSubstr(join.master));
  EXPECT_GE(join.elapsed, absl::Milliseconds(900));
  EXPECT_LT(join.elapsed, absl::Seconds(3)) << join.status;
}

TEST(ProcessGroupReducerTest, MissingPeersTimeOut) {
  const LonelyJoin join = JoinAlone(0);
  EXPECT_EQ(join.status.code(), absl::StatusCode::kDeadlineExceeded) << join.status;
  EXPECT_THAT(std::string(join.status.message()), HasSubstr("rank 0 of 2"));
  EXPECT_THAT(std::string(join.status.message()), HasSubstr(join.master));
  EXPECT_THAT(std::string(join.status.message()), HasSubstr("only 1 of 2 ranks joined"));
  EXPECT_GE(join.elapsed, absl::Seconds(1));
  EXPECT_LT(join.elapsed, absl::Seconds(3)) << join.status;
}

// Rank 1 starts a second before the master is up: it keeps trying until it is.
TEST(ProcessGroupReducerTest, TwoRankCollectives) {
  RunTwoRanks("collectives", /*master_delay=*/absl::Seconds(1));
}

TEST(ProcessGroupReducerTest, PeerExitingMidTrainingIsAnError) { RunTwoRanks("peer_exits"); }

// Both ranks' weights after a data-parallel step (as the workers wrote them) against the
// one-process step's: identical on the two ranks, within `tolerance` of one process, and
// the step itself large next to the tolerance.
void ExpectSameStep(const std::vector<std::string>& outs, const std::vector<float>& before,
                    const std::vector<float>& expected, double tolerance) {
  double moved = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    moved = std::max(moved, static_cast<double>(std::abs(expected[i] - before[i])));
  }
  EXPECT_GT(moved, 1000 * tolerance) << "the step must move the weights well beyond the tolerance";

  const std::vector<float> rank0 = AsFloats(outs[0]);
  const std::vector<float> rank1 = AsFloats(outs[1]);
  ASSERT_EQ(rank0.size(), expected.size());
  ASSERT_EQ(rank1.size(), expected.size());
  EXPECT_EQ(rank0, rank1) << "both ranks apply the same all-reduced gradient";
  double worst = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::abs(rank0[i] - expected[i])));
  }
  EXPECT_LE(worst, tolerance);
  std::cerr << "largest update " << moved << ", largest difference from one process " << worst
            << "\n";
}

// The key property: a 2-rank data-parallel SGD step (halves of unequal token counts) equals
// a 1-process step on the whole batch.
TEST(ProcessGroupReducerTest, TwoRankSgdStepEqualsOneProcessStep) {
  const std::vector<std::string> outs = RunTwoRanks("sgd");

  at::set_num_threads(1);
  auto model = MakeModel(kSeed);
  const std::vector<float> before = FlatParameters(*model);
  auto [loss_sum, tokens] = NextTokenLossSum(*model, Batch());
  ASSERT_EQ(tokens, 30);
  (loss_sum / static_cast<double>(tokens)).backward();
  SgdStep(*model);
  ExpectSameStep(outs, before, FlatParameters(*model), 1e-6);
}

// The same through the Trainer: Tree-GRPO loss, micro-batching, two AdamW steps with
// clipping; the 2-rank Trainer::Step on halves against a 1-process step on the whole batch.
TEST(ProcessGroupReducerTest, TwoRankTrainerStepEqualsOneProcessStep) {
  const std::vector<std::string> outs = RunTwoRanks("trainer");

  at::set_num_threads(1);
  auto trainer = Trainer::Create(MakeModel(kSeed), DataParallelTrainerConfig());
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  const std::vector<float> before = FlatParameters((*trainer)->model());
  const std::vector<TrainSequence> whole = TrainerWholeBatch();
  ASSERT_EQ(whole.size(), 12u);
  auto stats = (*trainer)->Step(whole);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->optimizer_steps, 2);
  // Clipping binds (the norm is of the all-reduced gradient on the ranks), and each
  // mini-batch spans several micro-batches.
  EXPECT_GT(stats->grad_norm, DataParallelTrainerConfig().grad_clip);
  EXPECT_GT(stats->forward_tokens, 4 * DataParallelTrainerConfig().micro_batch_tokens);
  ExpectSameStep(outs, before, FlatParameters((*trainer)->model()), 1e-5);
}

// The learner over two processes: rank 0 serves leases, collects trees and hands every step's
// batch to both ranks; rank 1 builds the model from rank 0's config (it has no model
// directory of its own) and trains its share. Three steps of two mini-batches equal the same
// job in one process.
TEST(DataParallelLearnerTest, TwoRankLearnerTrainsLikeOneProcess) {
  testing_learner::ScratchDir dir("dp_learner");
  const std::string rank0 = dir.Sub("rank0"), rank1 = dir.Sub("rank1"), one = dir.Sub("one");
  for (const std::string& d : {rank0, one}) {
    ASSERT_TRUE(InitModelDirectory("tiny", d + "/model", 7, /*overwrite=*/true).ok());
  }
  const std::vector<std::string> outs =
      RunTwoRanks("learner", absl::ZeroDuration(), {rank0, rank1});
  EXPECT_FALSE(std::filesystem::exists(rank1 + "/state")) << "rank 1 wrote state";
  EXPECT_FALSE(LatestCheckpoint(rank0 + "/state").empty()) << "rank 0 wrote no checkpoint";

  at::set_num_threads(1);
  auto learner = Learner::Create(DataParallelLearnerOptions(one), nullptr);
  ASSERT_TRUE(learner.ok()) << learner.status();
  const WeightSet weights = TrainToTheEnd(**learner);
  ASSERT_EQ(worker_failures, 0);
  const std::vector<float> two_ranks = AsFloats(outs[0]);
  const std::vector<float> one_process = AsFloats(weights.payload);
  ASSERT_EQ(two_ranks.size(), one_process.size());
  ASSERT_GT(one_process.size(), 100000u);
  // The ranks sum gradients in another order; 3 AdamW steps at lr 1e-3 move weights by about
  // 3e-3, the difference stays at float rounding.
  double worst = 0;
  for (size_t i = 0; i < one_process.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(two_ranks[i] - one_process[i])));
  EXPECT_LT(worst, 2e-5);
  // And training did move the weights.
  auto initial = LoadModelDirectory(one + "/model", ModelOptions{});
  ASSERT_TRUE(initial.ok()) << initial.status();
  auto start_set = ExportWeights(*initial->model, 0, Dtype::kF32);
  ASSERT_TRUE(start_set.ok()) << start_set.status();
  const std::vector<float> start = AsFloats(start_set->payload);
  ASSERT_EQ(start.size(), one_process.size());
  double moved = 0;
  for (size_t i = 0; i < start.size(); ++i)
    moved = std::max(moved, static_cast<double>(std::abs(start[i] - one_process[i])));
  EXPECT_GT(moved, 1e-3);
  std::cout << "largest update " << moved << ", largest difference from one process " << worst
            << "\n";
}

TEST(DataParallelLearnerTest, RanksWithOtherTrainerSettingsRefuseToStart) {
  testing_learner::ScratchDir dir("dp_mismatch");
  ASSERT_TRUE(InitModelDirectory("tiny", dir.Sub("rank0") + "/model", 7, true).ok());
  RunTwoRanks("learner_mismatch", absl::ZeroDuration(), {dir.Sub("rank0"), dir.Sub("rank1")});
}

}  // namespace
}  // namespace deepsearch

// Worker invocations (the tests' own rank processes) bypass GoogleTest. This main replaces
// gtest_main's, which the test helper links: the linker takes only the first definition.
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with(deepsearch::kWorkerFlag)) {
      return deepsearch::WorkerMain(argc, argv);
    }
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
