// CHECK(cond) << "context": aborts the process with a message when cond is
// false. For bugs only — broken invariants inside Tessera — never for bad input
// or failing peers, which are Status values.
//
// Thread-safety: safe to use from any thread.
#pragma once

#include <sstream>

namespace tessera::internal {

// Collects the streamed message and aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* cond);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return os_; }

 private:
  std::ostringstream os_;
};

// Lets `cond ? (void)0 : Voidify() & stream` type-check.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace tessera::internal

#define CHECK(cond)                 \
  (cond) ? (void)0                  \
         : ::tessera::internal::Voidify() & \
               ::tessera::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define CHECK_OK(expr)                                                  \
  do {                                                                  \
    ::tessera::Status ts_check_ = (expr);                               \
    CHECK(ts_check_.ok()) << ts_check_.ToString();                      \
  } while (0)
