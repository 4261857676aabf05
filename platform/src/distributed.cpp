// c10d process groups, collectives and bucketed gradient averaging.
//
// Backends are compiled in when their headers are reachable. A CUDA LibTorch
// exports -DUSE_C10D_NCCL to every consumer, so that macro does not say
// whether nccl.h is on our include path (pip wheels keep it in nvidia/nccl);
// SSLAB_HAVE_NCCL / SSLAB_HAVE_GLOO do.
#if __has_include(<gloo/algorithm.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's and PyTorch's LibTorch are built with Gloo
#endif
#define SSLAB_HAVE_GLOO 1
#endif
#if defined(SSLAB_WITH_NCCL) && __has_include(<nccl.h>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#define SSLAB_HAVE_NCCL 1
#endif

#include "sslab/host/distributed.h"

#include <cstdlib>
#include <mutex>

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef SSLAB_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef SSLAB_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "sslab/error.h"

namespace sslab {

// LibTorch 2.x split ProcessGroup into a dispatching front and per-device
// Backends; the collectives we call have the same signatures on both.
#if TORCH_VERSION_MAJOR >= 2
using C10dGroup = c10d::Backend;
#else
using C10dGroup = c10d::ProcessGroup;
#endif

// ---------------------------------------------------------------- environment

namespace {

bool parse_int(const std::string& text, int* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > 1 << 30) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

DistEnv read_dist_env(const std::map<std::string, std::string>& vars) {
  auto get = [&](const std::string& k) -> std::string {
    auto it = vars.find(k);
    return it == vars.end() ? "" : it->second;
  };
  auto number = [&](const std::string& key, const std::string& value) {
    int v = 0;
    SSLAB_CHECK(parse_int(value, &v), "distributed: environment variable ", key, "='", value,
                "' is not a non-negative integer");
    return v;
  };
  DistEnv env;
  std::string rank = get("RANK"), world = get("WORLD_SIZE"), local = get("LOCAL_RANK");
  std::string rank_key = "RANK", world_key = "WORLD_SIZE", local_key = "LOCAL_RANK";
  if (rank.empty() && world.empty()) {
    // SLURM: one task per process (srun), the job's master given by the user.
    std::string ntasks = get("SLURM_NTASKS");
    int n = 0;
    if (get("SLURM_PROCID").empty() || !parse_int(ntasks, &n) || n <= 1) return env;  // one process
    rank = get("SLURM_PROCID");
    world = ntasks;
    local = get("SLURM_LOCALID");
    rank_key = "SLURM_PROCID";
    world_key = "SLURM_NTASKS";
    local_key = "SLURM_LOCALID";
    env.source = "slurm";
  } else {
    env.source = "env";
  }
  std::vector<std::string> missing;
  if (rank.empty()) missing.push_back(rank_key);
  if (world.empty()) missing.push_back(world_key);
  if (get("MASTER_ADDR").empty()) missing.push_back("MASTER_ADDR");
  if (get("MASTER_PORT").empty()) missing.push_back("MASTER_PORT");
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    throw UserError(str("distributed: ", env.source == "slurm" ? "SLURM variables are set" : "RANK/WORLD_SIZE are set",
                        " but ", list, " ", missing.size() == 1 ? "is" : "are",
                        " not; launch with 'torchrun --nproc-per-node=N --no-python sslab train RECIPE' or set "
                        "RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT"));
  }
  env.rank = number(rank_key, rank);
  env.world_size = number(world_key, world);
  env.local_rank = local.empty() ? 0 : number(local_key, local);
  env.master_addr = get("MASTER_ADDR");
  env.master_port = number("MASTER_PORT", get("MASTER_PORT"));
  SSLAB_CHECK(env.world_size >= 1, "distributed: ", world_key, " must be at least 1");
  SSLAB_CHECK(env.rank < env.world_size, "distributed: ", rank_key, "=", env.rank, " is not below ", world_key, "=",
              env.world_size);
  SSLAB_CHECK(env.master_port > 0 && env.master_port < 65536, "distributed: MASTER_PORT=", env.master_port,
              " is not a TCP port");
  env.agent_store = get("TORCHELASTIC_USE_AGENT_STORE") == "True";
  return env;
}

DistEnv read_dist_env() {
  std::map<std::string, std::string> vars;
  for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                        "SLURM_NTASKS", "SLURM_LOCALID", "TORCHELASTIC_USE_AGENT_STORE"}) {
    if (const char* v = std::getenv(k)) vars[k] = v;
  }
  return read_dist_env(vars);
}

// ---------------------------------------------------------------- work and communicator

struct CollectiveWork::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  int rank = 0;
  std::function<void()> after;  // copy back (NCCL staging of host tensors)
};

namespace {
[[noreturn]] void collective_failed(const std::string& what, int rank, const std::exception& e) {
  std::string msg = e.what();
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) msg = c->what_without_backtrace();
  auto nl = msg.find('\n');
  if (nl != std::string::npos) msg = msg.substr(0, nl);
  throw UserError(str("distributed: ", what, " failed on rank ", rank,
                      " (another rank stopped or timed out; see its output): ", msg));
}
}  // namespace

CollectiveWork::CollectiveWork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CollectiveWork::~CollectiveWork() = default;

void CollectiveWork::wait() {
  try {
    impl_->work->wait();
  } catch (const std::exception& e) {
    collective_failed(impl_->what, impl_->rank, e);
  }
  if (impl_->after) impl_->after();
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<C10dGroup> group;
  std::string backend;
  torch::Device device = torch::kCPU;
  int rank = 0, world_size = 1;

  // NCCL only moves device tensors: stage host tensors on the device.
  bool staged(const torch::Tensor& t) const { return backend == "nccl" && !t.is_cuda(); }

  std::unique_ptr<CollectiveWork> make(c10::intrusive_ptr<c10d::Work> w, const std::string& what,
                                       std::function<void()> after = {}) {
    auto impl = std::make_unique<CollectiveWork::Impl>();
    impl->work = std::move(w);
    impl->what = what;
    impl->rank = rank;
    impl->after = std::move(after);
    return std::make_unique<CollectiveWork>(std::move(impl));
  }

  template <typename F>
  c10::intrusive_ptr<c10d::Work> issue(const std::string& what, F&& f) {
    try {
      return f();
    } catch (const std::exception& e) {
      collective_failed(what, rank, e);
    }
  }
};

Communicator::Communicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Communicator::~Communicator() = default;
int Communicator::rank() const { return impl_->rank; }
int Communicator::world_size() const { return impl_->world_size; }
const std::string& Communicator::backend() const { return impl_->backend; }

void Communicator::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  for (auto& t : tensors) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> one{impl_->staged(t) ? t.to(impl_->device) : t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    auto w = impl_->issue("broadcast", [&] { return impl_->group->broadcast(one, opts); });
    impl_->make(w, "broadcast")->wait();
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

std::unique_ptr<CollectiveWork> Communicator::all_reduce_sum_async(torch::Tensor& tensor) {
  SSLAB_ASSERT(tensor.is_contiguous(), "all_reduce of a non-contiguous tensor");
  std::vector<torch::Tensor> one{impl_->staged(tensor) ? tensor.to(impl_->device) : tensor};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  auto w = impl_->issue("all_reduce", [&] { return impl_->group->allreduce(one, opts); });
  std::function<void()> after;
  if (!one[0].is_same(tensor)) after = [t = tensor, s = one[0]]() mutable { t.copy_(s); };
  return impl_->make(w, "all_reduce", std::move(after));
}

void Communicator::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.reshape(-1).to(tensors[0].scalar_type()));
  torch::Tensor flat = torch::cat(flat_parts);
  all_reduce_sum_async(flat)->wait();
  int64_t offset = 0;
  for (auto& t : tensors) {
    t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

std::vector<torch::Tensor> Communicator::all_gather(const torch::Tensor& tensor) {
  torch::NoGradGuard no_grad;
  torch::Tensor input = tensor.contiguous();
  if (impl_->staged(input)) input = input.to(impl_->device);
  std::vector<torch::Tensor> inputs{input};
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < impl_->world_size; ++r) outputs[0].push_back(torch::empty_like(input));
  auto w = impl_->issue("all_gather", [&] { return impl_->group->allgather(outputs, inputs); });
  impl_->make(w, "all_gather")->wait();
  std::vector<torch::Tensor> result;
  for (auto& o : outputs[0]) result.push_back(o.to(tensor.device()));
  return result;
}

void Communicator::barrier() {
  if (impl_->backend == "nccl") {
    // NCCL's barrier needs a device; an all-reduce of one element is the same fence.
    torch::Tensor t = torch::zeros({1});
    std::vector<torch::Tensor> v{t};
    all_reduce_sum(v);
    return;
  }
  auto w = impl_->issue("barrier", [&] { return impl_->group->barrier(); });
  impl_->make(w, "barrier")->wait();
}

std::shared_ptr<Communicator> connect(const DistEnv& env, const std::string& backend, std::chrono::milliseconds timeout,
                                      const torch::Device& device) {
  SSLAB_ASSERT(env.world_size >= 1, "connect() needs a world of at least 1 process");
  std::string chosen = backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : backend;
#ifndef SSLAB_HAVE_NCCL
  SSLAB_CHECK(chosen != "nccl", "distributed.backend = \"nccl\" needs sslab built against a CUDA LibTorch with NCCL; "
                                "this build has Gloo only (use \"gloo\")");
#endif
  SSLAB_CHECK(!(chosen == "nccl" && !device.is_cuda()), "distributed.backend = \"nccl\" needs train.device = \"cuda\"");
  auto impl = std::make_unique<Communicator::Impl>();
  impl->backend = chosen;
  impl->device = device;
  impl->rank = env.rank;
  impl->world_size = env.world_size;

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = !env.agent_store && env.rank == 0;
  so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<std::size_t>(env.world_size);
  so.waitWorkers = false;
  so.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) msg = c->what_without_backtrace();
    msg = msg.substr(0, msg.find('\n'));
    throw UserError(str("distributed: rank ", env.rank, " cannot ", so.isServer ? "serve" : "reach",
                        " the rendezvous store at ", env.master_addr, ":", env.master_port, " within ",
                        timeout.count() / 1000.0, " s (check MASTER_ADDR/MASTER_PORT and that every rank was "
                        "started): ", msg));
  }
  impl->store = c10::make_intrusive<c10d::PrefixStore>("sslab", store);
  try {
    if (chosen == "gloo") {
#ifdef SSLAB_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
      if (ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (loopback)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, opts);
#else
      throw UserError("distributed.backend = \"gloo\": this LibTorch ships no Gloo headers (gloo/*.h); use \"nccl\"");
#endif
    } else {
#ifdef SSLAB_HAVE_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, opts);
#endif
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto* c = dynamic_cast<const c10::Error*>(&e)) msg = c->what_without_backtrace();
    throw UserError(str("distributed: rank ", env.rank, " could not form the ", chosen, " process group of ",
                        env.world_size, " ranks within ", timeout.count() / 1000.0, " s: ", msg.substr(0, msg.find('\n'))));
  }
  return std::make_shared<Communicator>(std::move(impl));
}

// ---------------------------------------------------------------- differentiable collectives

namespace {

struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, Communicator* comm) {
    ctx->saved_data["rows"] = x.size(0);
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    return torch::cat(comm->all_gather(x), 0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    int64_t rows = ctx->saved_data["rows"].toInt();
    torch::Tensor g = grads[0].contiguous().clone();
    std::vector<torch::Tensor> v{g};
    comm->all_reduce_sum(v);
    return {g.narrow(0, comm->rank() * rows, rows), torch::Tensor()};
  }
};

struct ReduceWithGrad : torch::autograd::Function<ReduceWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, Communicator* comm) {
    ctx->saved_data["comm"] = reinterpret_cast<int64_t>(comm);
    torch::Tensor y = x.contiguous().clone();
    std::vector<torch::Tensor> v{y};
    comm->all_reduce_sum(v);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    torch::Tensor g = grads[0].contiguous().clone();
    std::vector<torch::Tensor> v{g};
    comm->all_reduce_sum(v);
    return {g, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor all_gather_with_grad(Communicator* comm, const torch::Tensor& x) {
  if (comm == nullptr || comm->world_size() == 1) return x;
  return GatherWithGrad::apply(x, comm);
}

torch::Tensor all_reduce_sum_with_grad(Communicator* comm, const torch::Tensor& x) {
  if (comm == nullptr || comm->world_size() == 1) return x;
  return ReduceWithGrad::apply(x, comm);
}

// ---------------------------------------------------------------- gradient buckets

struct GradientSync::Impl {
  struct Bucket {
    std::vector<size_t> members;
    size_t remaining = 0;
    torch::Tensor flat;
    std::unique_ptr<CollectiveWork> work;
  };
  std::shared_ptr<Communicator> comm;
  std::vector<torch::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of;
  std::vector<char> ready;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // keeps the hooked nodes alive
  std::mutex mutex;
  bool overlap = true, armed = false;
  size_t next = 0;  // buckets are launched in index order on every rank
  int64_t overlapped = 0;

  void launch(size_t b) {
    Bucket& bucket = buckets[b];
    std::vector<torch::Tensor> parts;
    for (size_t i : bucket.members) {
      const torch::Tensor& g = params[i].grad();
      parts.push_back(g.defined() ? g.detach().reshape(-1) : torch::zeros({params[i].numel()}, params[i].options()));
    }
    bucket.flat = torch::cat(parts);
    bucket.work = comm->all_reduce_sum_async(bucket.flat);
  }

  void on_ready(size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || ready[i]) return;
    ready[i] = 1;
    --buckets[bucket_of[i]].remaining;
    while (next < buckets.size() && buckets[next].remaining == 0) launch(next++);
  }
};

namespace {
// Runs after a parameter's AccumulateGrad node: its gradient is complete.
struct ReadyHook : torch::autograd::FunctionPostHook {
  ReadyHook(std::weak_ptr<GradientSync::Impl> impl, size_t index) : impl(std::move(impl)), index(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto s = impl.lock()) s->on_ready(index);
    return outputs;
  }
  std::weak_ptr<GradientSync::Impl> impl;
  size_t index;
};
}  // namespace

GradientSync::GradientSync(std::shared_ptr<Communicator> comm, std::vector<torch::Tensor> params, int64_t bucket_bytes,
                           bool overlap)
    : impl_(std::make_shared<Impl>()) {
  impl_->comm = std::move(comm);
  impl_->overlap = overlap;
  for (auto& p : params)
    if (p.requires_grad()) impl_->params.push_back(p);
  auto& ps = impl_->params;
  impl_->bucket_of.assign(ps.size(), 0);
  impl_->ready.assign(ps.size(), 0);
  // Reverse registration order approximates the order backward produces
  // gradients (the last layers first), so the first buckets fill early.
  int64_t bytes = 0;
  for (size_t k = ps.size(); k-- > 0;) {
    const auto& p = ps[k];
    bool fresh = impl_->buckets.empty() || bytes >= bucket_bytes ||
                 ps[impl_->buckets.back().members.front()].options().dtype() != p.options().dtype() ||
                 ps[impl_->buckets.back().members.front()].device() != p.device();
    if (fresh) {
      impl_->buckets.emplace_back();
      bytes = 0;
    }
    impl_->buckets.back().members.push_back(k);
    impl_->bucket_of[k] = impl_->buckets.size() - 1;
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  if (overlap) {
    for (size_t i = 0; i < ps.size(); ++i) {
      auto acc = torch::autograd::impl::grad_accumulator(ps[i]);
      SSLAB_ASSERT(acc, "parameter ", i, " has no gradient accumulator");
      acc->add_post_hook(std::make_unique<ReadyHook>(impl_, i));
      impl_->accumulators.push_back(std::move(acc));
    }
  }
}

GradientSync::~GradientSync() = default;  // hooks left on live nodes see an expired impl

int64_t GradientSync::buckets() const { return static_cast<int64_t>(impl_->buckets.size()); }
int64_t GradientSync::overlapped_buckets() const { return impl_->overlapped; }

void GradientSync::arm() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto& b : impl_->buckets) {
    b.remaining = b.members.size();
    b.work.reset();
    b.flat = torch::Tensor();
  }
  std::fill(impl_->ready.begin(), impl_->ready.end(), 0);
  impl_->next = 0;
  impl_->armed = impl_->overlap;
}

void GradientSync::finish() {
  Impl& s = *impl_;
  torch::NoGradGuard no_grad;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.armed = false;
    s.overlapped = static_cast<int64_t>(s.next);
    while (s.next < s.buckets.size()) s.launch(s.next++);
  }
  // Which parameters have a gradient on some rank (the others keep none, as
  // in one process: the optimizer skips them).
  torch::Tensor used = torch::zeros({static_cast<int64_t>(s.params.size())}, torch::kFloat32);
  auto used_a = used.accessor<float, 1>();
  for (size_t i = 0; i < s.params.size(); ++i) used_a[i] = s.params[i].grad().defined() ? 1.f : 0.f;
  auto used_work = s.comm->all_reduce_sum_async(used);
  double inv = 1.0 / s.comm->world_size();
  for (auto& bucket : s.buckets) {
    bucket.work->wait();
    bucket.flat.mul_(inv);
  }
  used_work->wait();
  used_a = used.accessor<float, 1>();
  for (auto& bucket : s.buckets) {
    int64_t offset = 0;
    for (size_t i : bucket.members) {
      torch::Tensor& p = s.params[i];
      int64_t n = p.numel();
      if (used_a[i] > 0) {
        torch::Tensor avg = bucket.flat.narrow(0, offset, n).view(p.sizes());
        if (p.grad().defined())
          p.mutable_grad().copy_(avg);
        else
          p.mutable_grad() = avg.clone();
      }
      offset += n;
    }
    bucket.flat = torch::Tensor();
    bucket.work.reset();
  }
}

std::map<std::string, double> average_metrics(Communicator& comm, const std::map<std::string, double>& m) {
  torch::Tensor v = torch::empty({static_cast<int64_t>(m.size()) + 1}, torch::kFloat64);
  auto a = v.accessor<double, 1>();
  int64_t i = 0;
  for (const auto& kv : m) a[i++] = kv.second;
  a[i] = static_cast<double>(m.size());  // every rank must send the same keys
  std::vector<torch::Tensor> t{v};
  comm.all_reduce_sum(t);
  a = v.accessor<double, 1>();
  SSLAB_ASSERT(a[i] == static_cast<double>(m.size()) * comm.world_size(), "ranks logged different metric sets");
  std::map<std::string, double> out;
  i = 0;
  for (const auto& kv : m) out[kv.first] = a[i++] / comm.world_size();
  return out;
}

}  // namespace sslab
