// ClientImpl: tessera::Client — control requests to the leading controller
// over the same transport and NodePool the data path uses (the map watch has
// a transport of its own: map_watcher.h says why).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "client/map_watcher.h"
#include "client/node_pool.h"
#include "client/region_impl.h"
#include "client/span_region.h"
#include "client/version_clock.h"
#include "common/check.h"
#include "net/controller_list.h"
#include "net/rpc.h"
#include "proto/c2ctl.h"
#include "tessera/client.h"

namespace tessera {
namespace client {
namespace {

class ClientImpl final : public Client {
 public:
  // `watch`: the map watch's transport; null without ClientOptions::watch_maps.
  ClientImpl(const ClientOptions& o, net::ControllerList controllers, std::unique_ptr<net::ClientTransport> t,
             std::unique_ptr<net::ClientTransport> watch)
      : options_(o), controllers_(std::move(controllers)), pool_(std::move(t), o.retry_down_ms, o.node_silence_ms) {
    if (watch) {
      watcher_ = std::make_unique<MapWatcher>(
          std::move(watch), &controllers_,
          MapWatcher::Options{.hold_ms = std::max(100, o.timeout_ms / 2), .timeout_ms = o.timeout_ms});
    }
  }
  ~ClientImpl() override {
    CHECK(live_regions_.load() == 0) << "a Client destroyed while " << live_regions_.load()
                                     << " of its Regions are alive: destroy them first";
  }

  // At Connect, a list none of whose controllers can be reached is an error
  // at once (nothing to wait for: a typo, or no cluster); one that a standby
  // answers waits for its fail-over like any request.
  Status Ping() { return Control(proto::c2ctl::ListRegions{}, /*wait_if_unreachable=*/false).status(); }

  Result<std::unique_ptr<Region>> CreateRegion(const std::string& name, uint64_t size_bytes,
                                               const RegionOptions& options) override {
    TS_RETURN_IF_ERROR(CheckName(name));
    TS_ASSIGN_OR_RETURN(proto::Redundancy redundancy, proto::ParseRedundancy(options.redundancy));
    if (options.layout == "span") return CreateSpan(name, size_bytes, options, redundancy);
    if (options.layout != "split") return InvalidArgument("unknown layout '" + options.layout + "' (split, span)");
    TS_ASSIGN_OR_RETURN(auto info, Control(proto::c2ctl::CreateRegion{name, size_bytes, options.page_size,
                                                                      redundancy, options.lease_ms}));
    return MakeRegion(std::move(info));
  }

  Result<std::unique_ptr<Region>> OpenRegion(const std::string& name) override {
    TS_RETURN_IF_ERROR(CheckName(name));
    TS_ASSIGN_OR_RETURN(auto info, Control(proto::c2ctl::OpenRegion{.name = name}));
    return MakeRegion(std::move(info));
  }

  Result<std::unique_ptr<Region>> CloneRegion(const std::string& source, const std::string& name,
                                              uint32_t lease_ms) override {
    TS_RETURN_IF_ERROR(CheckName(source));
    TS_RETURN_IF_ERROR(CheckName(name));
    std::shared_ptr<SpanState> span = SpanOf(source);
    TS_ASSIGN_OR_RETURN(auto info,
                        Control(proto::c2ctl::CloneRegion{.source = source, .name = name, .lease_ms = lease_ms}));
    if (!span) return MakeRegion(std::move(info));
    const uint32_t page_size = info.page_size / static_cast<uint32_t>(span->map.k());
    std::shared_ptr<SpanState> copy;
    {
      std::lock_guard lk(span->mu);
      copy = std::make_shared<SpanState>(span->map.Snapshot());
    }
    return MakeSpan(std::move(info), std::move(copy), page_size);
  }

  Status RenewLeases(const std::vector<std::string>& names) override {
    for (const std::string& n : names) TS_RETURN_IF_ERROR(CheckName(n));
    for (size_t i = 0; i < names.size(); i += proto::c2ctl::kMaxLeaseRenewals) {
      proto::c2ctl::RenewLeases m;
      m.names.assign(names.begin() + i, names.begin() + std::min(names.size(), i + proto::c2ctl::kMaxLeaseRenewals));
      TS_RETURN_IF_ERROR(Control(m).status());
    }
    return Status::Ok();
  }

  Status DeleteRegion(const std::string& name) override {
    TS_RETURN_IF_ERROR(CheckName(name));
    return Control(proto::c2ctl::DeleteRegion{.name = name}).status();
  }

  Result<std::vector<RegionSummary>> ListRegions() override {
    TS_ASSIGN_OR_RETURN(auto list, Control(proto::c2ctl::ListRegions{}));
    return Convert(list);
  }

  Result<ClusterStatus> GetClusterStatus() override {
    TS_ASSIGN_OR_RETURN(auto s, Control(proto::c2ctl::ClusterStatus{}));
    ClusterStatus out;
    for (const auto& n : s.nodes) {
      out.nodes.push_back({n.id, n.addr, n.capacity, n.used, n.rss, n.alive, n.ms_since_heartbeat});
    }
    out.regions = Convert(s.regions);
    return out;
  }

 private:
  // Asking twice is harmless: these may be sent again after a connection
  // broke with the request in flight.
  template <typename Req>
  static constexpr bool kIdempotent =
      std::is_same_v<Req, proto::c2ctl::OpenRegion> || std::is_same_v<Req, proto::c2ctl::ListRegions> ||
      std::is_same_v<Req, proto::c2ctl::ClusterStatus> || std::is_same_v<Req, proto::c2ctl::RenewLeases>;

  // Sends `req` to the leading controller. One that is down or a standby
  // (NotLeader: it did nothing) is passed over for the next; a round with no
  // leader waits a little for a fail-over to finish, until timeout_ms —
  // unless every controller was unreachable and `wait_if_unreachable` is off.
  template <typename Req>
  Result<typename Req::Reply> Control(const Req& req, bool wait_if_unreachable = true) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    size_t unreachable = 0;  // in a row
    for (size_t tried = 1;; ++tried) {
      const std::string addr = controllers_.current();
      Status failed;
      auto conn = pool_.Get(addr, /*probe=*/true);
      unreachable = conn.ok() ? 0 : unreachable + 1;
      if (conn.ok()) {
        auto reply = net::Call(pool_.transport(), **conn, req, options_.timeout_ms);
        const bool undone = !reply.ok() && reply.status().code() == Code::kNotLeader;
        if (reply.ok() || !(undone || (kIdempotent<Req> && (*conn)->broken()))) return reply;
        failed = reply.status();
      } else {
        failed = Unavailable("controller at " + addr + " is unreachable: " + conn.status().message());
      }
      controllers_.Next(addr);
      const bool none_up = !wait_if_unreachable && unreachable >= controllers_.size();
      if (none_up || std::chrono::steady_clock::now() >= deadline) {
        return Status(failed.code(), (none_up ? "no controller of " + controllers_.text() + " can be reached"
                                              : "no controller of " + controllers_.text() +
                                                    " answered as the leader within " +
                                                    std::to_string(options_.timeout_ms) + " ms") +
                                         "; the last: " + failed.message());
      }
      if (tried % controllers_.size() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // The controller checks names fully; this keeps the encoder's limit.
  static Status CheckName(const std::string& name) {
    if (name.size() > 128) return InvalidArgument("region name longer than 128 characters");
    return Status::Ok();
  }

  static std::vector<RegionSummary> Convert(const proto::c2ctl::RegionList& list) {
    static constexpr const char* kHealth[] = {"healthy", "degraded", "rebuilding", "lost"};
    std::vector<RegionSummary> out;
    for (const auto& r : list.regions) {
      out.push_back({r.id, r.name, r.page_size, r.num_pages, r.node_count, r.redundancy.ToString(),
                     kHealth[static_cast<int>(r.health)], r.stripes, r.degraded_stripes, r.lost_stripes,
                     r.rebuild_done, r.rebuild_total, r.rebuild_bytes_per_s});
    }
    return out;
  }

  Result<std::unique_ptr<RegionImpl>> MakeRegionImpl(proto::c2ctl::RegionInfo info) {
    std::string name = info.name;
    TS_ASSIGN_OR_RETURN(auto map, client::RegionMap::Make(std::move(info)));
    auto fetch = [this, name] { return Control(proto::c2ctl::OpenRegion{.name = name}); };
    return std::make_unique<RegionImpl>(std::move(map), fetch, &pool_, &clock_, &live_regions_, options_.timeout_ms,
                                        watcher_.get());
  }
  Result<std::unique_ptr<Region>> MakeRegion(proto::c2ctl::RegionInfo info) {
    TS_ASSIGN_OR_RETURN(std::unique_ptr<RegionImpl> r, MakeRegionImpl(std::move(info)));
    return std::unique_ptr<Region>(std::move(r));
  }

  // A span region: rows of k pages in an ec:K+M region of that page size.
  Result<std::unique_ptr<Region>> CreateSpan(const std::string& name, uint64_t size_bytes,
                                             const RegionOptions& options, const proto::Redundancy& redundancy) {
    if (redundancy.kind != proto::Redundancy::Kind::kErasure || redundancy.k < 2) {
      return InvalidArgument("layout span keeps pages whole in erasure-coded stripes: it needs ec:K+M, not " +
                             redundancy.ToString());
    }
    if (options.page_size == 0) return InvalidArgument("page size 0");
    const uint64_t pages = (size_bytes + options.page_size - 1) / options.page_size;
    const uint64_t rows = SpanRegion::RowsFor(pages, redundancy.k);
    const uint32_t row_size = options.page_size * static_cast<uint32_t>(redundancy.k);
    if (pages == 0 || rows >= UINT32_MAX) return InvalidArgument("a span region of " + std::to_string(pages) + " pages");
    TS_ASSIGN_OR_RETURN(auto info, Control(proto::c2ctl::CreateRegion{name, rows * row_size, row_size, redundancy,
                                                                      options.lease_ms}));
    auto state = std::make_shared<SpanState>(pages, info.num_pages, redundancy.k);
    return MakeSpan(std::move(info), std::move(state), options.page_size);
  }
  Result<std::unique_ptr<Region>> MakeSpan(proto::c2ctl::RegionInfo info, std::shared_ptr<SpanState> state,
                                           uint32_t page_size) {
    const std::string name = info.name;
    TS_ASSIGN_OR_RETURN(std::unique_ptr<RegionImpl> rows, MakeRegionImpl(std::move(info)));
    {
      std::lock_guard lk(spans_mu_);
      std::erase_if(spans_, [](const auto& e) { return e.second.expired(); });
      spans_[name] = state;
    }
    return std::unique_ptr<Region>(
        std::make_unique<SpanRegion>(std::move(rows), std::move(state), page_size, options_.timeout_ms));
  }
  // The map of span region `name` if this client holds it.
  std::shared_ptr<SpanState> SpanOf(const std::string& name) {
    std::lock_guard lk(spans_mu_);
    auto it = spans_.find(name);
    return it == spans_.end() ? nullptr : it->second.lock();
  }

  std::atomic<int> live_regions_{0};  // Regions handed out and not yet destroyed
  ClientOptions options_;
  net::ControllerList controllers_;
  NodePool pool_;
  VersionClock clock_;
  std::unique_ptr<MapWatcher> watcher_;  // null without ClientOptions::watch_maps
  std::mutex spans_mu_;
  std::map<std::string, std::weak_ptr<SpanState>> spans_;  // this client's span regions; guarded by spans_mu_
};

}  // namespace
}  // namespace client

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  TS_ASSIGN_OR_RETURN(auto transport, net::NewTcpClientTransport({.wait = {.spin_us = options.spin_us},
                                                                   .connect_timeout_ms = options.timeout_ms}));
  TS_ASSIGN_OR_RETURN(auto controllers, net::ControllerList::Parse(options.controller));
  std::unique_ptr<net::ClientTransport> watch;
  if (options.watch_maps) {
    // It sleeps between polls: no spinning.
    TS_ASSIGN_OR_RETURN(watch, net::NewTcpClientTransport({.wait = {.spin_us = 0},
                                                           .connect_timeout_ms = options.timeout_ms}));
  }
  auto c = std::make_unique<client::ClientImpl>(options, std::move(controllers), std::move(transport),
                                                std::move(watch));
  TS_RETURN_IF_ERROR(c->Ping());
  return std::unique_ptr<Client>(std::move(c));
}

}  // namespace tessera
