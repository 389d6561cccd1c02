// The keys Tessera keeps in the control-plane store, named in one place
// because controllers and memory nodes both use them:
//   tessera/controller/<lease>   a controller's candidacy (election.h); the
//                                oldest leads; value: its address
//   tessera/members/<node id>    a memory node's membership under its lease
//                                (etcd only); value: its incarnation
//   tessera/node/, region/, meta/  the leader's records (controller/cluster_state.h)
//
// Thread-safety: constants and pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace tessera::ctlplane::keys {

inline constexpr const char* kPrefix = "tessera/";

inline std::string ControllerElection() { return std::string(kPrefix) + "controller"; }
inline std::string MembersPrefix() { return std::string(kPrefix) + "members/"; }
inline std::string Member(uint64_t node_id) { return MembersPrefix() + std::to_string(node_id); }

}  // namespace tessera::ctlplane::keys
