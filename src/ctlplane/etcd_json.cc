#include "ctlplane/etcd_json.h"

#include <openssl/evp.h>

namespace tessera::ctlplane::etcd {

std::string Base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> Unbase64(const std::string& text) {
  if (text.size() % 4 != 0) return Corruption("not base64: length " + std::to_string(text.size()));
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return Corruption("not base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t len = static_cast<size_t>(n);
  for (size_t i = text.size(); i > 0 && text[i - 1] == '=' && len > 0; --i) --len;
  out.resize(len);
  return out;
}

int64_t Int(const nlohmann::json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    return end != s.c_str() && *end == '\0' ? v : 0;
  }
  return 0;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

Result<KeyValue> KeyValueOf(const nlohmann::json& kv) {
  KeyValue out;
  TS_ASSIGN_OR_RETURN(out.key, Unbase64(kv.value("key", "")));
  TS_ASSIGN_OR_RETURN(out.value, Unbase64(kv.value("value", "")));
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.lease = Int(kv, "lease");
  return out;
}

Status StatusOfError(const nlohmann::json& reply, const std::string& what) {
  std::string message = reply.value("message", reply.value("error", std::string("no message")));
  message = what + ": etcd says " + message;
  switch (Int(reply, "code")) {
    case 3:  // INVALID_ARGUMENT
    case 11:  // OUT_OF_RANGE: a compacted revision
      return InvalidArgument(message);
    case 5:  // NOT_FOUND: an expired lease
      return NotFound(message);
    case 4:  // DEADLINE_EXCEEDED
      return TimedOut(message);
    case 14:  // UNAVAILABLE: no leader
      return Unavailable(message);
    default:
      return Internal(message);
  }
}

}  // namespace tessera::ctlplane::etcd
