#include "controller/members.h"

#include <cstdlib>

#include "common/log.h"
#include "ctlplane/keys.h"

namespace tessera::controller {
namespace {

// The node id a member key names; 0 for a key that names none.
uint64_t NodeIdOf(const std::string& key) {
  const std::string prefix = ctlplane::keys::MembersPrefix();
  if (!key.starts_with(prefix)) return 0;
  return std::strtoull(key.c_str() + prefix.size(), nullptr, 10);
}

}  // namespace

Result<std::unique_ptr<Members>> Members::Follow(ctlplane::Store& store) {
  std::unique_ptr<Members> m(new Members());
  TS_ASSIGN_OR_RETURN(ctlplane::RangeResult now, store.GetPrefix(ctlplane::keys::MembersPrefix()));
  for (const ctlplane::KeyValue& kv : now.kvs) {
    if (uint64_t id = NodeIdOf(kv.key)) m->incarnations_[id] = std::strtoull(kv.value.c_str(), nullptr, 10);
  }
  Members* self = m.get();
  TS_ASSIGN_OR_RETURN(m->watch_, store.WatchPrefix(ctlplane::keys::MembersPrefix(), now.revision + 1,
                                                   [self](ctlplane::WatchBatch b) { self->Apply(b); }));
  return m;
}

void Members::Apply(const ctlplane::WatchBatch& batch) {
  std::lock_guard lk(mu_);
  if (!batch.error.ok()) {
    log::Warn("controller: the watch on memory nodes' memberships ended: {}", batch.error.ToString());
    ended_ = true;
    return;
  }
  for (const ctlplane::WatchEvent& e : batch.events) {
    const uint64_t id = NodeIdOf(e.kv.key);
    if (id == 0) continue;
    if (e.type == ctlplane::WatchEvent::Type::kDelete) {
      // Its lease expired (or it left): the moment rebuild is timed from.
      if (incarnations_.erase(id) > 0) log::Info("memory node {}: its membership key is gone from etcd", id);
    } else {
      incarnations_[id] = std::strtoull(e.kv.value.c_str(), nullptr, 10);
    }
  }
}

bool Members::Holds(uint64_t id, uint64_t incarnation) const {
  std::lock_guard lk(mu_);
  auto it = incarnations_.find(id);
  return it != incarnations_.end() && it->second == incarnation;
}

bool Members::ended() const {
  std::lock_guard lk(mu_);
  return ended_;
}

}  // namespace tessera::controller
