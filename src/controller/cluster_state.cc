#include "controller/cluster_state.h"

#include <random>

#include <nlohmann/json.hpp>

namespace tessera::controller {
namespace {

using nlohmann::json;

const char* StateName(RegionState s) {
  switch (s) {
    case RegionState::kCreating: return "creating";
    case RegionState::kReady: return "ready";
    case RegionState::kDeleting: return "deleting";
  }
  return "?";
}

std::string RegionToJson(const RegionRecord& r) {
  // The map is stored as a table of distinct node ids plus an index per
  // fragment, which keeps large regions' records small.
  std::vector<uint64_t> table;
  std::map<uint64_t, size_t> index;
  std::vector<size_t> map;
  map.reserve(r.fragment_nodes.size());
  for (uint64_t n : r.fragment_nodes) {
    auto [it, fresh] = index.emplace(n, table.size());
    if (fresh) table.push_back(n);
    map.push_back(it->second);
  }
  std::string states;
  for (auto st : r.fragment_states) states.push_back(static_cast<char>('0' + static_cast<int>(st)));
  json j = {{"id", r.id}, {"name", r.name}, {"state", StateName(r.state)}, {"page_size", r.page_size},
            {"num_pages", r.num_pages}, {"pages_per_stripe", r.pages_per_stripe},
            {"redundancy", {static_cast<int>(r.redundancy.kind), r.redundancy.k, r.redundancy.m}},
            {"epoch", r.epoch}, {"nodes", table}, {"map", map}, {"fragment_states", states},
            {"lease_ms", r.lease_ms}};
  return j.dump();
}

// Parsing never throws out of here: a damaged record is a Corruption status.
Result<RegionRecord> RegionFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corruption("region record is not JSON: " + text.substr(0, 80));
  RegionRecord r;
  try {
    r.id = j.at("id").get<uint64_t>();
    r.name = j.at("name").get<std::string>();
    std::string state = j.at("state").get<std::string>();
    r.state = state == "ready" ? RegionState::kReady
              : state == "deleting" ? RegionState::kDeleting : RegionState::kCreating;
    r.page_size = j.at("page_size").get<uint32_t>();
    r.num_pages = j.at("num_pages").get<uint64_t>();
    r.pages_per_stripe = j.at("pages_per_stripe").get<uint32_t>();
    auto red = j.at("redundancy").get<std::vector<int>>();
    if (red.size() != 3) return Corruption("region " + r.name + ": redundancy is not [kind, k, m]");
    r.redundancy = {static_cast<proto::Redundancy::Kind>(red[0]), static_cast<uint8_t>(red[1]),
                    static_cast<uint8_t>(red[2])};
    r.epoch = j.at("epoch").get<uint64_t>();
    r.lease_ms = j.value("lease_ms", uint32_t{0});  // absent in records older than leases
    auto table = j.at("nodes").get<std::vector<uint64_t>>();
    for (size_t i : j.at("map").get<std::vector<size_t>>()) {
      if (i >= table.size()) return Corruption("region " + r.name + ": map names node index " + std::to_string(i));
      r.fragment_nodes.push_back(table[i]);
    }
    for (char c : j.at("fragment_states").get<std::string>()) {
      if (c < '0' || c > '2') return Corruption("region " + r.name + ": fragment state '" + std::string(1, c) + "'");
      r.fragment_states.push_back(static_cast<RegionRecord::FragmentState>(c - '0'));
    }
    if (r.pages_per_stripe == 0 || r.width() < 1 ||
        r.fragment_nodes.size() != r.stripe_count() * static_cast<uint64_t>(r.width()) ||
        r.fragment_states.size() != r.fragment_nodes.size()) {
      return Corruption("region " + r.name + ": map does not match its size and redundancy");
    }
  } catch (const json::exception& e) {
    return Corruption(std::string("region record: ") + e.what());
  }
  return r;
}

}  // namespace

uint32_t RegionRecord::StripePages(uint64_t s) const {
  uint64_t start = s * pages_per_stripe;
  uint64_t left = num_pages - start;
  return static_cast<uint32_t>(left < pages_per_stripe ? left : pages_per_stripe);
}

Result<std::vector<ctlplane::KeyValue>> ClusterState::List(const std::string& what) {
  TS_ASSIGN_OR_RETURN(ctlplane::RangeResult r, store_->GetPrefix(prefix_ + what));
  return std::move(r.kvs);
}

Status ClusterState::Write(ctlplane::Op op) {
  op.key = prefix_ + op.key;
  std::vector<ctlplane::Compare> compares;
  if (fence_) compares.push_back(*fence_);
  Result<ctlplane::TxnResult> r = store_->Txn(compares, {std::move(op)}, {});
  if (!r.ok()) {
    health_.Failed(r.status());
    return r.status();
  }
  health_.Succeeded();
  if (!r->succeeded) {
    fenced_out_ = true;
    return NotLeader("this controller no longer leads: its election key is gone, so another may");
  }
  return Status::Ok();
}

Status ClusterState::Load(uint64_t now_ns) {
  nodes_.clear();
  regions_.clear();
  ++region_generation_;
  next_node_id_ = next_region_id_ = 1;
  TS_ASSIGN_OR_RETURN(auto nodes, List("node/"));
  for (const ctlplane::KeyValue& kv : nodes) {
    json j = json::parse(kv.value, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j.contains("addr")) {
      return Corruption("node record " + kv.key + " is damaged");
    }
    NodeRecord n;
    n.id = j.value("id", uint64_t{0});
    n.addr = j.value("addr", std::string());
    n.capacity = j.value("capacity", uint64_t{0});
    n.incarnation = j.value("incarnation", uint64_t{0});
    n.domain = j.value("domain", std::string());
    n.last_heartbeat_ns = n.registered_ns = now_ns;
    nodes_[n.id] = n;
  }
  TS_ASSIGN_OR_RETURN(auto regions, List("region/"));
  for (const ctlplane::KeyValue& kv : regions) {
    TS_ASSIGN_OR_RETURN(RegionRecord r, RegionFromJson(kv.value));
    regions_[r.name] = std::move(r);
  }
  cluster_id_ = 0;
  TS_ASSIGN_OR_RETURN(auto meta, List("meta/"));
  for (const ctlplane::KeyValue& kv : meta) {
    uint64_t v = std::strtoull(kv.value.c_str(), nullptr, 10);
    if (kv.key == prefix_ + "meta/next_node_id") next_node_id_ = v;
    if (kv.key == prefix_ + "meta/next_region_id") next_region_id_ = v;
    if (kv.key == prefix_ + "meta/cluster_id") cluster_id_ = v;
  }
  return cluster_id_ != 0 ? Status::Ok() : LoadClusterId();
}

Status ClusterState::LoadClusterId() {
  // A random id, and region ids from a random point below 2^47 (they stay
  // exact in JSON and in doubles): a region id of an earlier cluster whose
  // clients are still running is then all but certainly not one of ours.
  std::random_device rd;
  auto random64 = [&rd] { return uint64_t{rd()} << 32 | rd(); };
  uint64_t id = 0;
  while (id == 0) id = random64();
  const uint64_t first_region = next_region_id_ > 1 || !regions_.empty()
                                    ? next_region_id_
                                    : 1 + random64() % (uint64_t{1} << 47);
  const std::string key = prefix_ + "meta/cluster_id";
  std::vector<ctlplane::Compare> compares{ctlplane::Compare::Absent(key)};
  if (fence_) compares.push_back(*fence_);
  Result<ctlplane::TxnResult> r =
      store_->Txn(compares,
                  {ctlplane::Op::Put(key, std::to_string(id)),
                   ctlplane::Op::Put(prefix_ + "meta/next_region_id", std::to_string(first_region))},
                  {});
  if (!r.ok()) {
    health_.Failed(r.status());
    return r.status().With("record the cluster's id");
  }
  health_.Succeeded();
  if (!r->succeeded) {
    // Made meanwhile by another controller, or this one's fence is gone.
    TS_ASSIGN_OR_RETURN(ctlplane::RangeResult got, store_->Get(key));
    if (got.kvs.empty()) {
      fenced_out_ = true;
      return NotLeader("this controller no longer leads: its election key is gone, so another may");
    }
    cluster_id_ = std::strtoull(got.kvs[0].value.c_str(), nullptr, 10);
    return cluster_id_ != 0 ? Status::Ok() : Corruption("the store's cluster id is '" + got.kvs[0].value + "'");
  }
  cluster_id_ = id;
  next_region_id_ = first_region;
  return Status::Ok();
}

void ClusterState::ProbeIfDue() {
  if (!health_.ProbeDue()) return;
  // As large as a small region's record: a nearly full disk that still
  // takes a few bytes into the slack of its last block is not yet writable.
  Write(ctlplane::Op::Put("meta/probe", std::string(2048, '.'))).IgnoreError();  // health_ hears of it either way
}

Result<uint64_t> ClusterState::NextId(const std::string& key, uint64_t* counter) {
  uint64_t id = (*counter)++;
  Status s = Write(ctlplane::Op::Put(key, std::to_string(*counter)));
  if (!s.ok()) {
    --*counter;
    return s;
  }
  return id;
}

Status ClusterState::PutNode(const NodeRecord& n) {
  json j = {{"id", n.id}, {"addr", n.addr}, {"capacity", n.capacity}, {"incarnation", n.incarnation},
            {"domain", n.domain}};
  TS_RETURN_IF_ERROR(Write(ctlplane::Op::Put("node/" + std::to_string(n.id), j.dump())));
  nodes_[n.id] = n;
  return Status::Ok();
}

Status ClusterState::PutRegion(const RegionRecord& r) {
  TS_RETURN_IF_ERROR(Write(ctlplane::Op::Put("region/" + r.name, RegionToJson(r))));
  regions_[r.name] = r;
  ++region_generation_;
  return Status::Ok();
}

Status ClusterState::DeleteRegion(const std::string& name) {
  TS_RETURN_IF_ERROR(Write(ctlplane::Op::Delete("region/" + name)));
  regions_.erase(name);
  ++region_generation_;
  return Status::Ok();
}

std::map<uint64_t, uint64_t> ClusterState::AllocatedByNode() const {
  std::map<uint64_t, uint64_t> out;
  for (auto& [name, r] : regions_) {
    for (uint32_t f = 0; f < r.fragment_count(); ++f) out[r.fragment_nodes[f]] += r.FragmentBytes(f);
  }
  return out;
}

}  // namespace tessera::controller
