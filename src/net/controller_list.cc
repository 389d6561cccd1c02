#include "net/controller_list.h"

#include "net/socket.h"

namespace tessera::net {

Result<ControllerList> ControllerList::Parse(const std::string& list) {
  std::vector<std::string> addrs;
  size_t start = 0;
  for (;;) {
    const size_t comma = list.find(',', start);
    std::string addr = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (addr.empty()) return InvalidArgument("controller list '" + list + "' has an empty entry");
    TS_RETURN_IF_ERROR(ParseAddress(addr).status().With("controller list '" + list + "'"));
    addrs.push_back(std::move(addr));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ControllerList(std::move(addrs), list);
}

void ControllerList::Next(const std::string& tried) {
  size_t at = at_.load();
  if (addrs_[at % addrs_.size()] == tried) at_.compare_exchange_strong(at, at + 1);
}

}  // namespace tessera::net
