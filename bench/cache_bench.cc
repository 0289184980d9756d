// The cache service's weight path (cache_service/cache_service.h), against memcpy measured in
// the same run:
//
//   build/bench/cache_bench [--mib 256] [--subscribers 4] [--repeats 2] [--chunk-kib 1024]
//                           [--zstd-level 3] [--step 1e-3] [--dir DIR]
//                           [--sft-steps 30] [--sft-batch 16] [--task countdown] [--skip-model]
//
// Part 1, publish and fan-out over loopback gRPC. An in-process rpc::GrpcServer on
// 127.0.0.1:0 serves a CacheServiceImpl over a SolutionStore and a WeightStore in a temporary
// directory. The weight set is bench/qwen_weight_sets.h's: bf16 in the shapes of
// Qwen2.5-0.5B, scaled to --mib (942: the whole model), two versions one simulated optimizer
// step (x(1 +- --step)) apart; version v carries the first for odd v, the second for even v,
// so consecutive versions are always one step apart. --subscribers threads each have their own
// channel (distinct channel arguments, so each has its own TCP connection) and one
// SubscribeWeights stream; each reassembles the chunks (rpc::WeightChunkAssembler) and
// decodes the version (DecodeWeights) against the one it holds. The publisher streams a full
// copy with rpc::WriteWeightChunks in --chunk-kib chunks, as the learner's
// CacheWeightPublisher does (its EncodeFull is made before the clock starts). Per version:
//   publish   from the first chunk until PublishWeights returns: the stream, the store's
//             decode (checksums) and its fsync'ed safetensors write
//   fan-out   from then until the last subscriber holds the decoded version
//   total     publish + fan-out; aggregate GB/s = subscribers x set bytes / total, and its
//             ratio to memcpy GB/s and to the first-touch rate (a new buffer of the set's
//             size filled by chunk appends: the page faults any receiver pays), both measured
//             in the same run
// twice: subscribers that take full copies (accept_delta=false), then subscribers that take
// deltas (accept_delta=true: the store encodes one delta against the version they hold, from
// its file, and shares it). Best of --repeats versions each. Every received set is compared
// with what was published, outside the timings. The same store work without gRPC (Publish;
// the delta and full encodings a subscriber asks for) is timed first for attribution. The CPU
// time other processes took meanwhile (/proc/stat) is printed, so a loaded machine shows.
//
// Part 2, the delta after one optimizer step of a trained model: a `small` preset model
// (task tokenizer) is trained from scratch for --sft-steps supervised steps
// (Trainer::SupervisedStep) on worked solutions of --task, and exported in bf16; then
//   (a) one more SupervisedStep (the same trainer: warm AdamW moments, LR 1e-3), and
//   (b) one Tree-GRPO Trainer::Step (a fresh trainer on the same weights at the RL defaults:
//       LR 1e-6, no warm-up, one mini-batch) on a synthetic batch: per group one prompt, its
//       worked solution (score +1) and other problems' solutions (score -1);
// each exported again and encoded as a delta against the first export: size against the
// full copy, share of bf16 values that changed, encode time.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <sys/resource.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "search/prompt_format.h"
#include "trainer/sft.h"
#include "trainer/trainer.h"

#include "bench/qwen_weight_sets.h"
#include "bench/roofline.h"
#include "cache_service/cache_service.h"
#include "common/core/logging.h"
#include "common/core/progress.h"
#include "common/core/rng.h"
#include "common/model/qwen2_model.h"
#include "common/model/torch_runtime.h"
#include "common/model/weight_export.h"
#include "common/rpc/server.h"
#include "common/rpc/status_conversion.h"
#include "common/rpc/weight_stream.h"
#include "common/tasks/task.h"
#include "common/tokenizer/char_tokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/weights/weight_file.h"
#include "common/weights/weight_set.h"
#include "learner/weight_publisher.h"

namespace deepsearch::bench {
namespace {

namespace fs = std::filesystem;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool Check(const absl::Status& status, const std::string& what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "%s: %s\n", what.c_str(), status.ToString().c_str());
  return false;
}

bool Check(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return true;
  std::fprintf(stderr, "%s: gRPC %d: %s\n", what.c_str(), static_cast<int>(status.error_code()),
               status.error_message().c_str());
  return false;
}

// CPU time, in core-seconds, used since boot by the whole machine (busy, from /proc/stat)
// and by this process (getrusage): what other processes took during a measurement is the
// difference of the two deltas.
struct CpuTimes {
  double machine = 0, self = 0;
};
CpuTimes ReadCpuTimes() {
  CpuTimes t;
  if (std::FILE* f = std::fopen("/proc/stat", "r")) {
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle,
                    &iowait, &irq, &softirq, &steal) == 8) {
      t.machine = static_cast<double>(user + nice + system + irq + softirq) /
                  static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    std::fclose(f);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  t.self = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  return t;
}

// A channel of its own: a local subchannel pool and an argument no other channel has, so no
// two channels share a TCP connection. No receive limit (chunks are ~1 MiB anyway).
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address, const std::string& role,
                                          int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(INT_MAX);
  args.SetMaxSendMessageSize(INT_MAX);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(absl::StrCat("bench.", role), index);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One version received and decoded by a subscriber.
struct Received {
  int64_t version = 0;
  WeightEncoding encoding = WeightEncoding::kFull;
  uint64_t wire_bytes = 0;  // the encoded payload
  double done = 0;          // Now() once decoded
};

// A subscriber on its own thread and channel: one SubscribeWeights stream at a time, every
// version reassembled and decoded against the one it holds.
class Subscriber {
 public:
  Subscriber(const std::string& address, int index)
      : id_(absl::StrCat("bench-subscriber-", index)),
        stub_(v1::CacheService::NewStub(OwnChannel(address, "subscriber", index))) {}
  ~Subscriber() { Stop(); }

  // Opens a subscription holding the version it has.
  void Start(bool accept_delta, bool accept_file) {
    Stop();
    context_ = std::make_unique<grpc::ClientContext>();
    v1::SubscribeWeightsRequest request;
    request.set_subscriber_id(id_);
    {
      absl::MutexLock lock(&mu_);
      request.set_have_version(held_.version);
      finished_ = false;
    }
    request.set_accept_delta(accept_delta);
    request.set_accept_file(accept_file);
    reader_ = stub_->SubscribeWeights(context_.get(), request);
    thread_ = std::thread([this] { Run(); });
  }

  // Cancels the subscription and joins its thread.
  void Stop() {
    if (!thread_.joinable()) return;
    context_->TryCancel();
    thread_.join();
    reader_.reset();
    context_.reset();
  }

  // Waits for `version`; nullopt (and the error printed) when the stream failed or `timeout`
  // passed.
  std::optional<Received> WaitFor(int64_t version, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [&] { return held_.version >= version || !error_.empty() || finished_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (held_.version == version && !received_.empty()) return received_.back();
    std::fprintf(stderr, "%s: version %lld did not arrive: %s\n", id_.c_str(),
                 static_cast<long long>(version),
                 error_.empty() ? (finished_ ? "the stream ended" : "timed out") : error_.c_str());
    return std::nullopt;
  }

  // Whether the set it holds is `expected` (version and bytes).
  bool Holds(int64_t version, const WeightSet& expected) {
    absl::MutexLock lock(&mu_);
    return held_.version == version && held_.tensors == expected.tensors &&
           held_.data() == expected.data();
  }

  // Frees the sets it replaced, outside any timing.
  void DropRetired() {
    std::vector<WeightSet> retired;
    {
      absl::MutexLock lock(&mu_);
      retired.swap(retired_);
    }
  }

 private:
  void Run() {
    rpc::WeightChunkAssembler assembler(uint64_t{1} << 40);
    v1::WeightChunk chunk;
    while (reader_->Read(&chunk)) {
      if (absl::Status s = assembler.Add(chunk); !s.ok()) {
        Fail(s.ToString());
        context_->TryCancel();
        break;
      }
      if (!assembler.complete()) continue;
      EncodedWeights encoded = assembler.Take();
      Received r;
      r.version = encoded.version;
      r.encoding = encoded.encoding;
      r.wire_bytes = encoded.data.size();
      // held_ changes only on this thread, so reading it unlocked here is safe.
      const bool delta = encoded.encoding == WeightEncoding::kDelta;
      absl::StatusOr<WeightSet> set = DecodeWeights(std::move(encoded), delta ? &held_ : nullptr);
      r.done = Now();
      if (!set.ok()) {
        Fail(set.status().ToString());
        context_->TryCancel();
        break;
      }
      absl::MutexLock lock(&mu_);
      retired_.push_back(std::move(held_));
      held_ = *std::move(set);
      received_.push_back(r);
    }
    const grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED && error_.empty()) {
      error_ = absl::StrCat("gRPC ", static_cast<int>(status.error_code()), ": ",
                            status.error_message());
    }
    finished_ = true;
  }

  void Fail(std::string error) {
    absl::MutexLock lock(&mu_);
    if (error_.empty()) error_ = std::move(error);
  }

  const std::string id_;
  std::unique_ptr<v1::CacheService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReader<v1::WeightChunk>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  WeightSet held_ ABSL_GUARDED_BY(mu_);  // version 0: none
  std::vector<WeightSet> retired_ ABSL_GUARDED_BY(mu_);
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::Status Publish(v1::CacheService::Stub& stub, const EncodedWeights& weights,
                     size_t chunk_bytes) {
  grpc::ClientContext context;
  v1::PublishWeightsResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::WeightChunk>> writer =
      stub.PublishWeights(&context, &response);
  rpc::WriteWeightChunks(weights, chunk_bytes,
                         [&](const v1::WeightChunk& c) { return writer->Write(c); });
  writer->WritesDone();
  return writer->Finish();
}

// Waits until the service counts `n` subscriptions (they are open server-side).
bool AwaitSubscribers(const CacheServiceImpl& service, int n) {
  const double deadline = Now() + 30;
  while (service.counters().subscribers != n) {
    if (Now() > deadline) {
      std::fprintf(stderr, "the service counts %d subscriptions, expected %d\n",
                   service.counters().subscribers, n);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct Round {
  int64_t version = 0;
  // From the publish's start: PublishWeights returned (the ack), the first and the last
  // subscriber hold the version, and both the ack came and every subscriber holds it.
  double publish = 0, first_done = 0, last_done = 0, total = 0;
  uint64_t wire_bytes = 0;
  WeightEncoding encoding = WeightEncoding::kFull;
};

struct Options {
  int64_t mib = 256;
  int subscribers = 4;
  int repeats = 2;
  std::string modes = "full,delta,file";
  int64_t chunk_kib = 1024;
  int zstd_level = 3;
  double step = 1e-3;
  std::string dir;
  bool skip_model = false;
  int sft_steps = 30;
  int sft_batch = 16;
  std::string task = "countdown";
  uint64_t seed = 1;
  int torch_threads = 1;
};

// Part 1. Returns false on any failure (printed).
bool FanOut(const Options& o, const std::string& dir) {
  const std::vector<QwenShape> shapes = ScaledQwenShapes(static_cast<uint64_t>(o.mib) << 20);
  const auto [first, second] = MakeQwenWeightSets(shapes, o.step);
  const std::vector<std::string> modes = absl::StrSplit(o.modes, ',');
  for (const std::string& m : modes) {
    if (m != "full" && m != "delta" && m != "file") {
      std::fprintf(stderr, "--modes: unknown phase '%s' (full, delta, file)\n", m.c_str());
      return false;
    }
  }
  const uint64_t set_bytes = first.payload.size();
  const double gb = static_cast<double>(set_bytes) / 1e9;
  size_t changed = 0;
  for (size_t i = 0; i < set_bytes; i += 2)
    changed += std::memcmp(&first.payload[i], &second.payload[i], 2) != 0;
  std::printf(
      "weight set: %zu bf16 tensors, %.1f MB (%.0fM parameters); one step changes %.1f%% of "
      "the values\n",
      first.tensors.size(), gb * 1e3, gb * 1e3 / 2,
      100.0 * static_cast<double>(changed) / static_cast<double>(set_bytes / 2));
  const double memcpy_gbps = MeasureMemcpyGBps(set_bytes, 3);
  const size_t chunk_bytes = static_cast<size_t>(o.chunk_kib) << 10;
  // What any receiver of a new version pays first: a new buffer of the set's size, filled in
  // chunks (the kernel faults in and zeroes every page on first touch).
  double first_touch = 1e300;
  for (int i = 0; i < 3; ++i) {
    const double start = Now();
    std::string buffer;
    buffer.reserve(set_bytes);
    for (size_t offset = 0; offset < set_bytes; offset += chunk_bytes)
      buffer.append(first.payload, offset, chunk_bytes);
    first_touch = std::min(first_touch, Now() - start);
  }
  const double first_touch_gbps = gb / first_touch;
  std::printf(
      "memcpy: %.2f GB/s; a new buffer filled by chunk appends (first touch): %.2f GB/s (%.1f "
      "MB)\n%d subscribers, %lld KiB chunks, zstd level %d\n\n",
      memcpy_gbps, first_touch_gbps, gb * 1e3, o.subscribers, static_cast<long long>(o.chunk_kib),
      o.zstd_level);
  std::fflush(stdout);
  // Version v: `first` for odd v, `second` for even v.
  auto content = [&](int64_t v) -> const WeightSet& { return v % 2 == 1 ? first : second; };
  auto encode = [&](int64_t v) {
    WeightSet set = content(v);
    set.version = v;
    return EncodeFull(std::move(set));
  };

  // The store's share, without gRPC: Publish (decode, checksums, fsync'ed write), then the
  // encodings a subscriber asks for.
  double store_publish = 1e300, store_delta = 0, store_full = 0;
  double file_write = 1e300, file_sync = 1e300, file_read = 1e300;
  uint64_t store_delta_bytes = 0;
  const CpuTimes store_cpu_start = ReadCpuTimes();
  const double store_wall_start = Now();
  {
    absl::StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(
        {.dir = dir + "/alone", .zstd_level = o.zstd_level, .cached_encodings = 2});
    if (!Check(store.status(), "opening the weight store")) return false;
    const int64_t versions = std::max(2, o.repeats);
    for (int64_t v = 1; v <= versions; ++v) {
      EncodedWeights encoded = encode(v);
      const double start = Now();
      const absl::Status published = (*store)->Publish(std::move(encoded));
      store_publish = std::min(store_publish, Now() - start);
      if (!Check(published, "WeightStore::Publish")) return false;
    }
    double start = Now();
    absl::StatusOr<std::shared_ptr<const EncodedWeights>> delta =
        (*store)->Encoded(versions, versions - 1);
    store_delta = Now() - start;
    if (!Check(delta.status(), "WeightStore::Encoded (delta)")) return false;
    store_delta_bytes = (*delta)->data.size();
    start = Now();
    absl::StatusOr<std::shared_ptr<const EncodedWeights>> full = (*store)->Encoded(versions, 0);
    store_full = Now() - start;
    if (!Check(full.status(), "WeightStore::Encoded (full)")) return false;
    // The same-host path's pieces: the publisher's write into the import directory, the fsync
    // the store adds before acknowledging, and one subscriber's map and check.
    for (int64_t v = 1; v <= 2; ++v) {
      WeightSet set = content(v);
      set.version = v;
      const std::string path = absl::StrCat(dir, "/alone/file-", v, ".safetensors");
      start = Now();
      if (!Check(WriteWeightFile(set, path, /*sync=*/false), "WriteWeightFile")) return false;
      file_write = std::min(file_write, Now() - start);
      start = Now();
      if (!Check(SyncWeightFile(path), "SyncWeightFile")) return false;
      file_sync = std::min(file_sync, Now() - start);
      start = Now();
      absl::StatusOr<WeightSet> mapped = ReadWeightFile(path, {.version = v});
      file_read = std::min(file_read, Now() - start);
      if (!Check(mapped.status(), "ReadWeightFile")) return false;
    }
  }
  std::error_code ec;
  fs::remove_all(dir + "/alone", ec);
  std::printf("the store alone (no gRPC), %.1f MB set:\n", gb * 1e3);
  std::printf("| operation | time | GB/s | of memcpy |\n|---|---|---|---|\n");
  auto store_row = [&](const char* what, double seconds) {
    std::printf("| %s | %.0f ms | %.2f | %.2fx |\n", what, seconds * 1e3, gb / seconds,
                gb / seconds / memcpy_gbps);
  };
  store_row("`WeightStore::Publish` (decode + checksums + fsync'ed safetensors write)",
            store_publish);
  store_row("`Encoded(v, v-1)`: base read back from its file + `EncodeDelta`", store_delta);
  store_row("`Encoded(v, 0)`: copy + `EncodeFull`", store_full);
  store_row("`WriteWeightFile` (the learner's write into the import directory, no fsync)",
            file_write);
  store_row("`SyncWeightFile` (the fsync before the store acknowledges)", file_sync);
  store_row("`ReadWeightFile` (a subscriber maps the file and checks every tensor)", file_read);
  const CpuTimes store_cpu_end = ReadCpuTimes();
  const double store_self = store_cpu_end.self - store_cpu_start.self;
  std::printf(
      "(delta: %.1f MB, %.1f%% of the set; %.1f s wall: this process %.1f core-s, other "
      "processes %.1f core-s)\n\n",
      static_cast<double>(store_delta_bytes) / 1e6,
      100.0 * static_cast<double>(store_delta_bytes) / static_cast<double>(set_bytes),
      Now() - store_wall_start, store_self,
      std::max(0.0, store_cpu_end.machine - store_cpu_start.machine - store_self));
  std::fflush(stdout);

  // The service.
  absl::StatusOr<std::unique_ptr<SolutionStore>> solutions =
      SolutionStore::Open(dir + "/solutions.db");
  if (!Check(solutions.status(), "opening the solution store")) return false;
  absl::StatusOr<std::unique_ptr<WeightStore>> weights = WeightStore::Open(
      {.dir = dir + "/weights", .zstd_level = o.zstd_level, .cached_encodings = 2});
  if (!Check(weights.status(), "opening the weight store")) return false;
  CacheOptions cache_options;
  cache_options.store_dir = dir;
  cache_options.chunk_bytes = static_cast<int32_t>(chunk_bytes);
  cache_options.delta_zstd_level = o.zstd_level;
  cache_options.status_interval = absl::ZeroDuration();
  CacheServiceImpl service(solutions->get(), weights->get(), cache_options, rpc::ServerAuth());
  absl::StatusOr<std::unique_ptr<rpc::GrpcServer>> server =
      rpc::GrpcServer::Start({.name = "cache", .listen_address = "127.0.0.1:0", .rpc = {}},
                             {{&service, "deepsearch.v1.CacheService"}});
  if (!Check(server.status(), "starting the server")) return false;
  const std::string address = (*server)->dial_address();
  auto publisher = v1::CacheService::NewStub(OwnChannel(address, "publisher", 0));
  {  // Connects the publisher's channel before any timing.
    grpc::ClientContext context;
    v1::CacheStats stats;
    if (!Check(publisher->GetCacheStats(&context, {}, &stats), "GetCacheStats")) return false;
  }
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (int i = 0; i < o.subscribers; ++i)
    subscribers.push_back(std::make_unique<Subscriber>(address, i));

  ProgressReporter::Options progress_options;
  progress_options.label = "cache_bench";
  progress_options.total = static_cast<int64_t>(modes.size()) * o.repeats;
  progress_options.unit = "version";
  progress_options.interval = absl::Seconds(1);
  ProgressReporter progress(std::move(progress_options));

  bool ok = true;
  int64_t version = 0;
  // The learner's publisher for the same-host phase: writes each version into the store's
  // import directory and publishes it by reference.
  absl::StatusOr<std::unique_ptr<CacheWeightPublisher>> file_publisher =
      CacheWeightPublisher::Connect(address, RpcConfig{}, absl::Minutes(10),
                                    {.import_dir = (*weights)->import_dir()});
  if (!Check(file_publisher.status(), "connecting the file publisher")) return false;

  enum class Mode { kFull, kDelta, kFile };
  // One phase: subscriptions opened for `mode`, then --repeats versions.
  auto phase = [&](Mode mode, std::vector<Round>& rounds) {
    for (auto& s : subscribers) s->Start(mode == Mode::kDelta, mode == Mode::kFile);
    if (!AwaitSubscribers(service, o.subscribers)) return false;
    for (int r = 0; r < o.repeats; ++r) {
      const int64_t v = ++version;
      // Made before the clock starts, as the learner has its export in hand.
      EncodedWeights encoded;
      WeightSet set;
      if (mode == Mode::kFile) {
        set = content(v);
        set.version = v;
      } else {
        encoded = encode(v);
      }
      for (auto& s : subscribers) s->DropRetired();
      const double start = Now();
      absl::Status published;
      if (mode == Mode::kFile) {
        published = (*file_publisher)->Publish(set);
      } else {
        published = rpc::FromGrpcStatus(Publish(*publisher, encoded, chunk_bytes));
      }
      const double published_at = Now();
      if (!Check(published, absl::StrCat("publishing version ", v))) return false;
      Round round;
      round.version = v;
      round.publish = published_at - start;
      round.first_done = 1e300;
      for (auto& s : subscribers) {
        const std::optional<Received> got = s->WaitFor(v, absl::Minutes(10));
        if (!got.has_value()) return false;
        round.last_done = std::max(round.last_done, got->done - start);
        round.first_done = std::min(round.first_done, got->done - start);
        round.wire_bytes = got->wire_bytes;
        round.encoding = got->encoding;
      }
      round.total = std::max(round.publish, round.last_done);
      for (auto& s : subscribers) {
        if (!s->Holds(v, content(v))) {
          std::fprintf(stderr, "a subscriber's version %lld differs from what was published\n",
                       static_cast<long long>(v));
          return false;
        }
      }
      rounds.push_back(round);
      progress.Add(1);
      progress.SetStatus(absl::StrFormat("%s v%d: publish %.0f ms, last subscriber %.0f ms",
                                         mode == Mode::kFull    ? "full"
                                         : mode == Mode::kDelta ? "delta"
                                                                : "file",
                                         v, round.publish * 1e3, round.last_done * 1e3));
    }
    for (auto& s : subscribers) s->Stop();
    return AwaitSubscribers(service, 0);
  };
  std::vector<Round> full_rounds, delta_rounds, file_rounds;
  const CpuTimes cpu_start = ReadCpuTimes();
  const double wall_start = Now();
  auto wanted = [&](const char* mode) {
    return std::find(modes.begin(), modes.end(), mode) != modes.end();
  };
  ok = (!wanted("full") || phase(Mode::kFull, full_rounds)) &&
       (!wanted("delta") || phase(Mode::kDelta, delta_rounds)) &&
       (!wanted("file") || phase(Mode::kFile, file_rounds));
  const CpuTimes cpu_end = ReadCpuTimes();
  const double wall = Now() - wall_start;
  progress.Finish();
  for (auto& s : subscribers) s->Stop();
  const CacheServiceCounters counters = service.counters();
  (*weights)->Close();
  (*server)->Shutdown(absl::Seconds(1));
  server->reset();
  if (!ok) return false;

  auto best = [](const std::vector<Round>& rounds) {
    return *std::min_element(rounds.begin(), rounds.end(),
                             [](const Round& a, const Round& b) { return a.total < b.total; });
  };
  const double n = o.subscribers;
  std::printf("\n%d subscribers over loopback gRPC, %.1f MB set, best of %d versions each:\n",
              o.subscribers, gb * 1e3, o.repeats);
  std::printf(
      "| subscribers take | sent to each | publish (until acknowledged) | first / last subscriber "
      "holds it | total | aggregate GB/s (%d x set / total) | of memcpy (%.1f GB/s) | of first "
      "touch (%.2f GB/s) |\n|---|---|---|---|---|---|---|---|\n",
      o.subscribers, memcpy_gbps, first_touch_gbps);
  for (const auto& [what, rounds] :
       {std::pair{"full copies (accept_delta=false)", &full_rounds},
        std::pair{"deltas (accept_delta=true)", &delta_rounds},
        std::pair{"file references, same host (accept_file=true)", &file_rounds}}) {
    if (rounds->empty()) continue;
    const Round r = best(*rounds);
    const double aggregate = n * gb / r.total;
    std::printf("| %s | %.1f MB%s | %.0f ms | %.0f / %.0f ms | %.0f ms | %.2f | %.3fx | %.2fx |\n",
                what, static_cast<double>(r.wire_bytes) / 1e6,
                r.encoding == WeightEncoding::kDelta  ? " (delta)"
                : r.encoding == WeightEncoding::kFile ? " (a path; mapped)"
                                                      : "",
                r.publish * 1e3, r.first_done * 1e3, r.last_done * 1e3, r.total * 1e3, aggregate,
                aggregate / memcpy_gbps, aggregate / first_touch_gbps);
  }
  std::printf("all versions (publish acknowledged / last subscriber holds it, ms from the start):");
  for (const auto& [what, rounds] :
       {std::pair{"full", &full_rounds}, std::pair{"delta", &delta_rounds},
        std::pair{"file", &file_rounds}}) {
    std::printf(" %s", what);
    for (const Round& r : *rounds) std::printf(" %.0f/%.0f", r.publish * 1e3, r.last_done * 1e3);
    std::printf(";");
  }
  std::printf("\nthe service sent %lld versions, %.1f MB in all\n",
              static_cast<long long>(counters.weight_versions_sent),
              static_cast<double>(counters.weight_bytes_sent) / 1e6);
  const double self = cpu_end.self - cpu_start.self;
  const double others = std::max(0.0, cpu_end.machine - cpu_start.machine - self);
  std::printf(
      "CPU during the gRPC phases (%.1f s wall, %ld cores): this process %.1f core-s, other "
      "processes %.1f core-s\n\n",
      wall, sysconf(_SC_NPROCESSORS_ONLN), self, others);
  std::fflush(stdout);
  return true;
}

// Part 2 helpers.

// The share of bf16 values that differ between two sets of the same layout.
double ChangedShare(const WeightSet& a, const WeightSet& b) {
  size_t changed = 0;
  for (size_t i = 0; i + 1 < a.payload.size(); i += 2)
    changed += std::memcmp(&a.payload[i], &b.payload[i], 2) != 0;
  return static_cast<double>(changed) / static_cast<double>(a.payload.size() / 2);
}

struct DeltaRow {
  std::string what;
  double lr = 0;
  double changed = 0;
  uint64_t full_bytes = 0, delta_bytes = 0;
  double encode_seconds = 0, decode_seconds = 0;
};

absl::StatusOr<DeltaRow> MeasureDelta(std::string what, double lr, const WeightSet& before,
                                      const WeightSet& after, int level) {
  DeltaRow row;
  row.what = std::move(what);
  row.lr = lr;
  row.changed = ChangedShare(before, after);
  row.full_bytes = EncodeFull(after).data.size();
  double start = Now();
  absl::StatusOr<EncodedWeights> delta = EncodeDelta(after, before, level);
  row.encode_seconds = Now() - start;
  if (!delta.ok()) return delta.status();
  row.delta_bytes = delta->data.size();
  start = Now();
  absl::StatusOr<WeightSet> decoded = DecodeWeights(*std::move(delta), &before);
  row.decode_seconds = Now() - start;
  if (!decoded.ok()) return decoded.status();
  if (decoded->payload != after.payload) {
    return absl::DataLossError("the delta did not reproduce the exported set");
  }
  return row;
}

// Part 2. Returns false on any failure (printed).
bool TrainedDelta(const Options& o) {
  absl::StatusOr<std::string> tokenizer_json = DefaultTaskTokenizerJson();
  if (!Check(tokenizer_json.status(), "task tokenizer")) return false;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      ParseTokenizerJson(*tokenizer_json, "task tokenizer");
  if (!Check(tokenizer.status(), "task tokenizer")) return false;
  const std::optional<TokenId> bos = (*tokenizer)->TokenToId("<bos>");
  const std::optional<TokenId> eos = (*tokenizer)->TokenToId("<eos>");
  if (!bos || !eos) {
    std::fprintf(stderr, "the task tokenizer lacks <bos> or <eos>\n");
    return false;
  }
  // As `deepsearch model init --preset small` makes it.
  const int64_t vocab = ((*tokenizer)->vocab_size() + 63) / 64 * 64;
  absl::StatusOr<Qwen2Config> config = Qwen2Config::Preset("small", vocab);
  if (!Check(config.status(), "small preset")) return false;
  config->bos_token_id = *bos;
  config->eos_token_ids = {*eos};
  absl::StatusOr<std::unique_ptr<Qwen2Model>> model = Qwen2Model::Create(*config, {});
  if (!Check(model.status(), "creating the model")) return false;
  (*model)->InitializeRandom(o.seed);
  absl::StatusOr<std::unique_ptr<TaskFamily>> family = MakeTaskFamily(o.task);
  if (!Check(family.status(), "task")) return false;
  absl::StatusOr<PromptFormat> format = PromptFormat::Parse(PromptFormat::kTaskDefault);
  if (!Check(format.status(), "prompt template")) return false;

  // trainer/sft.h's defaults.
  const SftConfig sft;
  const TrainerConfig tc = SftTrainerConfig(sft, (*tokenizer)->vocab_size());
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*std::move(model), tc);
  if (!Check(trainer.status(), "creating the trainer")) return false;

  Rng rng(DeriveSeed(o.seed, "cache_bench.sft"));
  std::vector<Problem> problems;
  auto batch = [&]() -> absl::StatusOr<std::vector<TrainSequence>> {
    problems.clear();
    for (int i = 0; i < o.sft_batch; ++i) problems.push_back((*family)->Generate(rng));
    return MakeSftSequences(**family, **tokenizer, *format, *eos, problems);
  };
  std::printf(
      "model: small preset, %.2fM parameters, vocab %lld; %d supervised steps of %d %s "
      "worked solutions\n",
      static_cast<double>(config->NumParameters()) / 1e6, static_cast<long long>(vocab),
      o.sft_steps, o.sft_batch, o.task.c_str());
  std::fflush(stdout);
  ProgressReporter::Options progress_options;
  progress_options.label = "cache_bench sft";
  progress_options.total = o.sft_steps;
  progress_options.unit = "step";
  progress_options.interval = absl::Seconds(5);
  ProgressReporter progress(std::move(progress_options));
  double first_loss = 0, last_loss = 0;
  const double train_start = Now();
  for (int step = 0; step < o.sft_steps; ++step) {
    absl::StatusOr<std::vector<TrainSequence>> b = batch();
    if (!Check(b.status(), "SFT batch")) return false;
    absl::StatusOr<TrainStepStats> stats = (*trainer)->SupervisedStep(*b);
    if (!Check(stats.status(), "SupervisedStep")) return false;
    if (step == 0) first_loss = stats->loss;
    last_loss = stats->loss;
    progress.Add(1);
    progress.SetStatus(absl::StrFormat("loss=%.3f lr=%.2g", stats->loss, stats->lr));
  }
  progress.Finish();
  const double train_seconds = Now() - train_start;

  absl::StatusOr<WeightSet> trained = ExportWeights((*trainer)->model(), 1, Dtype::kBF16);
  if (!Check(trained.status(), "ExportWeights")) return false;
  absl::StatusOr<WeightSet> master = ExportWeights((*trainer)->model(), 1, Dtype::kF32);
  if (!Check(master.status(), "ExportWeights (f32)")) return false;

  std::vector<DeltaRow> rows;
  // (a) One more supervised step: the same trainer, its AdamW moments warm.
  {
    absl::StatusOr<std::vector<TrainSequence>> b = batch();
    if (!Check(b.status(), "SFT batch")) return false;
    absl::StatusOr<TrainStepStats> stats = (*trainer)->SupervisedStep(*b);
    if (!Check(stats.status(), "SupervisedStep")) return false;
    absl::StatusOr<WeightSet> after = ExportWeights((*trainer)->model(), 2, Dtype::kBF16);
    if (!Check(after.status(), "ExportWeights")) return false;
    absl::StatusOr<DeltaRow> row = MeasureDelta("one more `SupervisedStep` (warm AdamW moments)",
                                                stats->lr, *trained, *after, o.zstd_level);
    if (!Check(row.status(), "delta after SupervisedStep")) return false;
    rows.push_back(*row);
  }
  trainer->reset();
  // (b) One Tree-GRPO step from the same weights at the RL trainer's defaults.
  {
    absl::StatusOr<std::unique_ptr<Qwen2Model>> copy = ImportWeights(*master, ModelOptions{});
    if (!Check(copy.status(), "ImportWeights")) return false;
    TrainerConfig rl;  // lr 1e-6
    rl.warmup_steps = 0;
    rl.mini_batches = 1;
    rl.vocab_limit = (*tokenizer)->vocab_size();
    absl::StatusOr<std::unique_ptr<Trainer>> grpo = Trainer::Create(*std::move(copy), rl);
    if (!Check(grpo.status(), "creating the RL trainer")) return false;
    absl::StatusOr<WeightSet> start = ExportWeights((*grpo)->model(), 1, Dtype::kBF16);
    if (!Check(start.status(), "ExportWeights")) return false;
    if (start->payload != trained->payload) {
      std::fprintf(stderr, "the imported model does not export the trained weights\n");
      return false;
    }
    // Groups of 4: the group's prompt with its own worked solution (+1) and three other
    // problems' solutions (-1).
    absl::StatusOr<std::vector<TrainSequence>> solved = batch();
    if (!Check(solved.status(), "RL batch")) return false;
    constexpr size_t kGroup = 4;
    std::vector<TrainSequence> rl_batch;
    for (size_t g = 0; g + kGroup <= solved->size(); g += kGroup) {
      for (size_t k = 0; k < kGroup; ++k) {
        TrainSequence s;
        s.group_id = absl::StrCat("tree", g);
        s.prompt_tokens = (*solved)[g].prompt_tokens;
        s.response_tokens = (*solved)[g + k].response_tokens;
        s.final_score = k == 0 ? 1.0f : -1.0f;
        s.token_scores.assign(s.response_tokens.size(), s.final_score);
        rl_batch.push_back(std::move(s));
      }
    }
    absl::StatusOr<TrainStepStats> stats = (*grpo)->Step(rl_batch);
    if (!Check(stats.status(), "Trainer::Step")) return false;
    absl::StatusOr<WeightSet> after = ExportWeights((*grpo)->model(), 2, Dtype::kBF16);
    if (!Check(after.status(), "ExportWeights")) return false;
    absl::StatusOr<DeltaRow> row =
        MeasureDelta(absl::StrCat("one Tree-GRPO `Step` (", rl_batch.size(),
                                  " sequences, fresh AdamW, 1 mini-batch)"),
                     stats->lr, *trained, *after, o.zstd_level);
    if (!Check(row.status(), "delta after Step")) return false;
    rows.push_back(*row);
  }

  std::printf("trained %d steps in %.1f s: loss %.3f -> %.3f\n\n", o.sft_steps, train_seconds,
              first_loss, last_loss);
  std::printf(
      "| after the export, one more | LR | bf16 values changed | full copy | delta | delta / "
      "full | `EncodeDelta` | `DecodeWeights` |\n|---|---|---|---|---|---|---|---|\n");
  for (const DeltaRow& r : rows) {
    std::printf("| %s | %.2g | %.1f%% | %.2f MB | %.2f MB | %.1f%% | %.1f ms | %.1f ms |\n",
                r.what.c_str(), r.lr, 100.0 * r.changed, static_cast<double>(r.full_bytes) / 1e6,
                static_cast<double>(r.delta_bytes) / 1e6,
                100.0 * static_cast<double>(r.delta_bytes) / static_cast<double>(r.full_bytes),
                r.encode_seconds * 1e3, r.decode_seconds * 1e3);
  }
  std::fflush(stdout);
  return true;
}

}  // namespace
}  // namespace deepsearch::bench

int main(int argc, char** argv) {
  using namespace deepsearch;
  bench::Options o;
  CLI::App app{"The cache service's weight publish and fan-out over loopback gRPC"};
  app.add_option("--mib", o.mib, "Size of the bf16 weight set, MiB (the 0.5B model: 942)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--subscribers", o.subscribers, "Subscriber threads, one channel each")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--modes", o.modes,
                 "Phases to run, of full (streamed copies), delta (streamed deltas), file "
                 "(same-host file references)")
      ->capture_default_str();
  app.add_option("--repeats", o.repeats, "Versions published per phase (the best is kept)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--chunk-kib", o.chunk_kib, "Data chunk size of the streams, KiB")
      ->capture_default_str()
      ->check(CLI::Range(1, 16384));
  app.add_option("--zstd-level", o.zstd_level, "zstd level of the deltas")->capture_default_str();
  app.add_option("--step", o.step, "Relative size of the simulated optimizer step")
      ->capture_default_str();
  app.add_option("--dir", o.dir, "Parent of the store's temporary directory (default: TMPDIR)");
  app.add_flag("--skip-model", o.skip_model, "Skip part 2 (the trained model's delta)");
  app.add_option("--sft-steps", o.sft_steps, "Supervised steps before the measured step")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sft-batch", o.sft_batch, "Sequences per supervised step")
      ->capture_default_str()
      ->check(CLI::Range(4, 4096));
  app.add_option("--task", o.task, "Task family of the worked solutions")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the model and the problems")->capture_default_str();
  app.add_option("--torch-threads", o.torch_threads, "Torch intra-op threads (part 2)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  SetLogLevel(LogLevel::kWarning);  // no line per subscription
  RuntimeConfig runtime;
  runtime.torch_threads = o.torch_threads;
  if (!bench::Check(ConfigureTorchRuntime(runtime), "torch runtime")) return 1;

  namespace fs = std::filesystem;
  const fs::path parent = o.dir.empty() ? fs::temp_directory_path() : fs::path(o.dir);
  const std::string dir = (parent / absl::StrCat("cache_bench_", ::getpid())).string();
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::printf("store directory: %s\n", dir.c_str());
  bool ok = bench::FanOut(o, dir);
  fs::remove_all(dir, ec);
  if (ok && !o.skip_model) ok = bench::TrainedDelta(o);
  return ok ? 0 : 1;
}
