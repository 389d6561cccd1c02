// EtcdStore: the Store (store.h) on an etcd 3.4 cluster, through its v3 JSON
// gateway (cpp-httplib for HTTP, nlohmann-json for the bodies) — the back end
// for many machines, where the control plane must outlive any one of them.
// Consensus is etcd's; this is a client.
//
// Each call goes to one endpoint; when that one cannot be reached the call
// tries the next, so a cluster that lost a member keeps serving. A watch runs
// on a thread of its own over a streamed response; when its stream breaks
// (its member died) it reconnects to another member from the revision after
// the last one it delivered, so its callback misses and repeats nothing.
//
// The gateway's quirks, handled here: keys, values and range ends are base64;
// 64-bit numbers (revisions, lease IDs) come as JSON strings; fields at their
// default (false, 0, PUT) are left out.
//
// Thread-safety: thread-safe (each call makes its own connection). A watch
// may be destroyed from its own callback.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "ctlplane/store.h"

namespace tessera::ctlplane {

class EtcdStore final : public Store {
 public:
  struct Options {
    std::vector<std::string> endpoints;  // "host:port" of the gateway (etcd's client URLs)
    int64_t timeout_ms = 5000;           // per request, per endpoint
  };

  // Checks that some endpoint answers before returning.
  static Result<std::unique_ptr<EtcdStore>> Open(Options options);

  Result<Revision> Put(const std::string& key, const std::string& value, LeaseId lease) override;
  Result<Revision> Delete(const std::string& key) override;
  Result<RangeResult> Get(const std::string& key) override;
  Result<RangeResult> GetPrefix(const std::string& prefix) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                        const std::vector<Op>& failure) override;
  Result<LeaseId> Grant(int64_t ttl_seconds) override;
  Status KeepAlive(LeaseId lease) override;
  Status Revoke(LeaseId lease) override;
  Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, Revision start_revision,
                                             std::function<void(WatchBatch)> callback) override;

 private:
  explicit EtcdStore(Options options) : options_(std::move(options)) {}
  // POSTs `body` to `path` on the first endpoint that answers; the reply's
  // JSON, or the Status of etcd's error.
  Result<nlohmann::json> Call(const std::string& path, const nlohmann::json& body);
  Result<RangeResult> Range(const std::string& key, const std::string& range_end);

  const Options options_;
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last
};

}  // namespace tessera::ctlplane
