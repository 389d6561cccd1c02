// page_client: one client of a Tessera cluster in a process of its own,
// driven a line at a time on stdin — for tests that need clients whose clocks
// disagree (run under faketime) or that come and go. Commands:
//   open NAME [SIZE REDUNDANCY]  open region NAME (creating it if a size is given)
//   write PAGE VALUE             write the page with the pattern of (PAGE, VALUE)
//   read PAGE                    read it back
//   quit
// Each answers one line: "ok", "ok VALUE" for a read ("ok zero" for a page
// never written, "ok ?" for bytes that are no pattern), or "err CODE MESSAGE".
//
// Usage: page_client CONTROLLER
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/page_pattern.h"
#include "common/units.h"
#include "tessera/client.h"

namespace {

constexpr uint32_t kPage = 4096;

std::string Err(const tessera::Status& s) {
  return "err " + std::to_string(static_cast<int>(s.code())) + " " + s.ToString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: page_client CONTROLLER\n");
    return 2;
  }
  auto client = tessera::Client::Connect({.controller = argv[1]});
  if (!client.ok()) {
    std::fprintf(stderr, "page_client: %s\n", client.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<tessera::Region> region;
  std::vector<uint8_t> buf(kPage);
  for (std::string line; std::getline(std::cin, line);) {
    std::istringstream in(line);
    std::string cmd, name, size, redundancy;
    uint64_t page = 0, value = 0;
    in >> cmd;
    std::string answer;
    if (cmd == "quit") break;
    if (cmd == "open" && in >> name) {
      in >> size >> redundancy;
      tessera::Result<uint64_t> bytes = size.empty() ? tessera::Result<uint64_t>(0) : tessera::ParseSize(size);
      auto r = !bytes.ok()    ? tessera::Result<std::unique_ptr<tessera::Region>>(bytes.status())
               : size.empty() ? (*client)->OpenRegion(name)
                              : (*client)->CreateRegion(name, *bytes, {.redundancy = redundancy});
      answer = r.ok() ? "ok" : Err(r.status());
      if (r.ok()) region = std::move(*r);
    } else if (!region && (cmd == "write" || cmd == "read")) {
      answer = "err 1 no region open";
    } else if (cmd == "write" && in >> page >> value) {
      tessera::FillPattern(buf.data(), kPage, page, value);
      tessera::Status s = region->Write(page, 1, buf.data());
      answer = s.ok() ? "ok" : Err(s);
    } else if (cmd == "read" && in >> page) {
      tessera::Status s = region->Read(page, 1, buf.data());
      uint64_t v = 0;
      bool zero = true;
      for (uint8_t b : buf) zero = zero && b == 0;
      answer = !s.ok() ? Err(s)
               : zero  ? "ok zero"
               : tessera::CheckPattern(buf.data(), kPage, page, &v) ? "ok " + std::to_string(v)
                                                                     : "ok ?";
    } else {
      answer = "err 1 cannot parse '" + line + "'";
    }
    std::cout << answer << std::endl;
  }
  return 0;
}
