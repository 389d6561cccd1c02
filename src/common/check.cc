#include "common/check.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace tessera::internal {

CheckFailure::CheckFailure(const char* file, int line, const char* cond) {
  os_ << "CHECK failed at " << file << ":" << line << ": " << cond << " ";
}

CheckFailure::~CheckFailure() {
  std::string msg = os_.str() + "\n";
  // write(2) rather than stdio: this may run with locks held or heap damaged.
  ssize_t n = ::write(STDERR_FILENO, msg.data(), msg.size());
  (void)n;
  std::abort();
}

}  // namespace tessera::internal
