// The etcd v3 JSON gateway's encoding, shared by EtcdStore's calls and its
// watches: base64 bytes, 64-bit numbers as strings, prefix range ends, and
// etcd's error replies as a Status.
//
// Thread-safety: pure functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ctlplane/store.h"

namespace tessera::ctlplane::etcd {

std::string Base64(const std::string& bytes);
// The bytes `text` encodes; Corruption if it is not base64.
Result<std::string> Unbase64(const std::string& text);

// A field holding a 64-bit integer, as a string or a number; 0 when absent.
int64_t Int(const nlohmann::json& object, const char* field);

// The range end that makes [prefix, end) every key starting with `prefix`:
// its last byte below 0xff plus one ("\0" for an empty prefix: all keys).
std::string PrefixEnd(const std::string& prefix);

// A "kv" object of a range or watch reply.
Result<KeyValue> KeyValueOf(const nlohmann::json& kv);

// etcd's error reply ({"error": ..., "code": gRPC code, "message": ...}) as
// a Status; `what` names the call.
Status StatusOfError(const nlohmann::json& reply, const std::string& what);

}  // namespace tessera::ctlplane::etcd
