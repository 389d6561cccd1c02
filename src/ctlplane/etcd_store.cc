#include "ctlplane/etcd_store.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "ctlplane/etcd_json.h"

namespace tessera::ctlplane {

using nlohmann::json;

Result<std::unique_ptr<EtcdStore>> EtcdStore::Open(Options options) {
  if (options.endpoints.empty()) return InvalidArgument("no etcd endpoint given");
  std::unique_ptr<EtcdStore> store(new EtcdStore(std::move(options)));
  TS_RETURN_IF_ERROR(store->Get("/").status());
  return store;
}

Result<json> EtcdStore::Call(const std::string& path, const json& body) {
  const size_t n = options_.endpoints.size(), first = preferred_.load();
  const std::string payload = body.dump();
  std::string failures;
  for (size_t i = 0; i < n; ++i) {
    const std::string& endpoint = options_.endpoints[(first + i) % n];
    httplib::Client client("http://" + endpoint);
    const auto timeout = std::chrono::milliseconds(options_.timeout_ms);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    // The body is collected here, not by httplib: an error reply ends with
    // gRPC trailers httplib 0.11 fails to read, after the whole JSON came.
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = payload;
    req.set_header("Content-Type", "application/json");
    std::string body;
    req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
      body.append(data, len);
      return true;
    };
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    const bool sent = client.send(req, res, error);
    json reply = json::parse(body, nullptr, false);
    if (res.status <= 0 || (!sent && reply.is_discarded())) {
      failures += (failures.empty() ? "" : ", ") + endpoint + " (" + httplib::to_string(error) + ")";
      continue;
    }
    if (reply.is_discarded()) return ProtocolError("etcd " + endpoint + path + " answered " + body.substr(0, 200));
    // A member without a leader cannot serve; another may.
    if (res.status != 200) {
      Status s = etcd::StatusOfError(reply, path);
      if (s.code() != Code::kUnavailable) return s;
      failures += (failures.empty() ? "" : ", ") + endpoint + " (" + s.message() + ")";
      continue;
    }
    preferred_.store((first + i) % n);
    return reply;
  }
  return Unavailable("no etcd endpoint answered " + path + ": " + failures);
}

Result<Revision> EtcdStore::Put(const std::string& key, const std::string& value, LeaseId lease) {
  if (key.empty()) return InvalidArgument("empty key");
  json body = {{"key", etcd::Base64(key)}, {"value", etcd::Base64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/kv/put", body));
  return etcd::Int(reply["header"], "revision");
}

Result<Revision> EtcdStore::Delete(const std::string& key) {
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/kv/deleterange", {{"key", etcd::Base64(key)}}));
  return etcd::Int(reply["header"], "revision");
}

Result<RangeResult> EtcdStore::Range(const std::string& key, const std::string& range_end) {
  json body = {{"key", etcd::Base64(key)}};
  if (!range_end.empty()) body["range_end"] = etcd::Base64(range_end);
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/kv/range", body));
  RangeResult r{.revision = etcd::Int(reply["header"], "revision")};
  for (const json& kv : reply.value("kvs", json::array())) {
    TS_ASSIGN_OR_RETURN(KeyValue v, etcd::KeyValueOf(kv));
    r.kvs.push_back(std::move(v));
  }
  return r;
}

Result<RangeResult> EtcdStore::Get(const std::string& key) { return Range(key, ""); }

Result<RangeResult> EtcdStore::GetPrefix(const std::string& prefix) { return Range(prefix, etcd::PrefixEnd(prefix)); }

namespace {

json CompareJson(const Compare& c) {
  json j = {{"key", etcd::Base64(c.key)}, {"result", "EQUAL"}};
  switch (c.target) {
    case Compare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = std::to_string(c.revision);
      break;
    case Compare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = etcd::Base64(c.value);
      break;
  }
  return j;
}

json OpsJson(const std::vector<Op>& ops) {
  json out = json::array();
  for (const Op& op : ops) {
    if (op.kind == Op::Kind::kDelete) {
      out.push_back({{"request_delete_range", {{"key", etcd::Base64(op.key)}}}});
      continue;
    }
    json put = {{"key", etcd::Base64(op.key)}, {"value", etcd::Base64(op.value)}};
    if (op.lease != 0) put["lease"] = std::to_string(op.lease);
    out.push_back({{"request_put", put}});
  }
  return out;
}

}  // namespace

Result<TxnResult> EtcdStore::Txn(const std::vector<Compare>& compares, const std::vector<Op>& success,
                                 const std::vector<Op>& failure) {
  for (const auto* ops : {&success, &failure}) {
    for (const Op& op : *ops) {
      if (op.key.empty()) return InvalidArgument("empty key");
    }
  }
  json cmp = json::array();
  for (const Compare& c : compares) cmp.push_back(CompareJson(c));
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/kv/txn", {{"compare", cmp}, {"success", OpsJson(success)},
                                                     {"failure", OpsJson(failure)}}));
  return TxnResult{.succeeded = reply.value("succeeded", false), .revision = etcd::Int(reply["header"], "revision")};
}

Result<LeaseId> EtcdStore::Grant(int64_t ttl_seconds) {
  if (ttl_seconds < 1) return InvalidArgument("a lease's TTL is at least 1 s, not " + std::to_string(ttl_seconds));
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/lease/grant", {{"TTL", std::to_string(ttl_seconds)}}));
  if (reply.contains("error") && !reply["error"].get<std::string>().empty()) {
    return Internal("lease grant: etcd says " + reply["error"].get<std::string>());
  }
  return etcd::Int(reply, "ID");
}

Status EtcdStore::KeepAlive(LeaseId lease) {
  TS_ASSIGN_OR_RETURN(json reply, Call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}}));
  // An expired lease answers with a TTL of 0, left out of the reply.
  const json& result = reply.contains("result") ? reply["result"] : reply;
  if (etcd::Int(result, "TTL") <= 0) return NotFound("lease " + std::to_string(lease) + " has expired or was revoked");
  return Status::Ok();
}

Status EtcdStore::Revoke(LeaseId lease) {
  Result<json> reply = Call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
  if (!reply.ok() && reply.status().code() == Code::kNotFound) return Status::Ok();
  return reply.status();
}

}  // namespace tessera::ctlplane
