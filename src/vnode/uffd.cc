#include "vnode/uffd.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace tessera::vnode {
namespace {

// The ABI of Linux 6.8+ that Debian 12's headers (6.1) lack. Values are the
// kernel's: include/uapi/linux/userfaultfd.h.
constexpr uint64_t kFeatureMove = 1ull << 16;
struct UffdioMove {
  uint64_t dst;
  uint64_t src;
  uint64_t len;
  uint64_t mode;
  int64_t move;  // written by the kernel: bytes moved, or -errno
};
constexpr unsigned long kUffdioMove = _IOWR(UFFDIO, 0x05, UffdioMove);
// /dev/userfaultfd (Linux 5.11+) hands out descriptors to whoever may open it.
constexpr unsigned long kIocNew = _IO(0xAA, 0x00);

std::string KernelRelease() {
  utsname u{};
  return uname(&u) == 0 ? u.release : "unknown";
}

Status OpenError(int err) {
  if (err == ENOSYS) {
    return Unavailable("userfaultfd is not available: this kernel (" + KernelRelease() +
                       ") was built without CONFIG_USERFAULTFD; tessera run needs it");
  }
  if (err == EPERM || err == EACCES) {
    return Unavailable(
        "userfaultfd is not permitted for this user: run as root, grant CAP_SYS_PTRACE, allow "
        "`sysctl vm.unprivileged_userfaultfd=1`, or give this user read-write access to /dev/userfaultfd");
  }
  return Status::FromErrno(err, "userfaultfd");
}

Result<UniqueFd> OpenDescriptor() {
  const int flags = O_CLOEXEC | O_NONBLOCK;
  long fd = syscall(SYS_userfaultfd, flags);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  int err = errno;
  if (err == EPERM) {
    UniqueFd dev(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
    if (dev.valid()) {
      int via = ioctl(dev.get(), kIocNew, flags);
      if (via >= 0) return UniqueFd(via);
    }
  }
  return OpenError(err);
}

std::string Missing(const UffdFeatures& want, const UffdFeatures& got) {
  std::string m;
  auto add = [&](bool w, bool g, const char* name) {
    if (w && !g) m += (m.empty() ? "" : ", ") + std::string(name);
  };
  add(want.move, got.move, "UFFDIO_MOVE (Linux 6.8)");
  add(want.event_remove, got.event_remove, "EVENT_REMOVE");
  add(want.event_unmap, got.event_unmap, "EVENT_UNMAP");
  add(want.event_remap, got.event_remap, "EVENT_REMAP");
  add(want.event_fork, got.event_fork, "EVENT_FORK");
  add(want.sigbus, got.sigbus, "SIGBUS");
  return m;
}

uint64_t ToBits(const UffdFeatures& f) {
  uint64_t b = 0;
  if (f.move) b |= kFeatureMove;
  if (f.event_remove) b |= UFFD_FEATURE_EVENT_REMOVE;
  if (f.event_unmap) b |= UFFD_FEATURE_EVENT_UNMAP;
  if (f.event_remap) b |= UFFD_FEATURE_EVENT_REMAP;
  if (f.event_fork) b |= UFFD_FEATURE_EVENT_FORK;
  if (f.sigbus) b |= UFFD_FEATURE_SIGBUS;
  return b;
}

UffdFeatures FromBits(uint64_t b) {
  return {.move = (b & kFeatureMove) != 0,
          .event_remove = (b & UFFD_FEATURE_EVENT_REMOVE) != 0,
          .event_unmap = (b & UFFD_FEATURE_EVENT_UNMAP) != 0,
          .event_remap = (b & UFFD_FEATURE_EVENT_REMAP) != 0,
          .event_fork = (b & UFFD_FEATURE_EVENT_FORK) != 0,
          .sigbus = (b & UFFD_FEATURE_SIGBUS) != 0};
}

uint64_t U(const void* p) { return reinterpret_cast<uint64_t>(p); }

Status IoctlError(int err, const char* what) {
  if (err == EAGAIN) return Unavailable("address space changing");
  if (err == EEXIST) return AlreadyExists("page already present");
  return Status::FromErrno(err, what);
}

}  // namespace

Result<Uffd> Uffd::Open(const UffdFeatures& wanted, const UffdFeatures& required) {
  // The kernel grants all asked features or fails the call: learn what it
  // has first (a probe descriptor), then ask for what both sides want.
  uint64_t available;
  {
    TS_ASSIGN_OR_RETURN(UniqueFd probe, OpenDescriptor());
    uffdio_api api{.api = UFFD_API, .features = 0, .ioctls = 0};
    if (ioctl(probe.get(), UFFDIO_API, &api) < 0) return Status::FromErrno(errno, "UFFDIO_API");
    available = api.features;
  }
  UffdFeatures got = FromBits(available & ToBits(wanted));
  std::string missing = Missing(required, got);
  if (!missing.empty()) {
    return Unavailable("userfaultfd on this kernel (" + KernelRelease() + ") lacks " + missing);
  }
  TS_ASSIGN_OR_RETURN(UniqueFd fd, OpenDescriptor());
  uffdio_api api{.api = UFFD_API, .features = ToBits(got), .ioctls = 0};
  if (ioctl(fd.get(), UFFDIO_API, &api) < 0) return Status::FromErrno(errno, "UFFDIO_API");
  return Uffd(std::move(fd), got);
}

Status Uffd::RegisterMissing(void* addr, size_t len) {
  uffdio_register r{.range = {.start = U(addr), .len = len}, .mode = UFFDIO_REGISTER_MODE_MISSING, .ioctls = 0};
  if (ioctl(fd(), UFFDIO_REGISTER, &r) < 0) return Status::FromErrno(errno, "UFFDIO_REGISTER");
  return Status::Ok();
}

Status Uffd::Unregister(void* addr, size_t len) {
  uffdio_range r{.start = U(addr), .len = len};
  if (ioctl(fd(), UFFDIO_UNREGISTER, &r) < 0) return Status::FromErrno(errno, "UFFDIO_UNREGISTER");
  return Status::Ok();
}

Status Uffd::Copy(void* dst, const void* src, size_t len, size_t* copied) {
  uffdio_copy c{.dst = U(dst), .src = U(src), .len = len, .mode = 0, .copy = 0};
  if (ioctl(fd(), UFFDIO_COPY, &c) == 0) {
    if (copied != nullptr) *copied = len;
    return Status::Ok();
  }
  int err = errno;
  if (copied != nullptr) *copied = c.copy > 0 ? static_cast<size_t>(c.copy) : 0;
  return IoctlError(err, "UFFDIO_COPY");
}

Status Uffd::ZeroPage(void* dst, size_t len) {
  uffdio_zeropage z{.range = {.start = U(dst), .len = len}, .mode = 0, .zeropage = 0};
  if (ioctl(fd(), UFFDIO_ZEROPAGE, &z) == 0) return Status::Ok();
  return IoctlError(errno, "UFFDIO_ZEROPAGE");
}

Result<size_t> Uffd::Move(void* dst, void* src, size_t len) {
  UffdioMove m{.dst = U(dst), .src = U(src), .len = len, .mode = 0, .move = 0};
  if (ioctl(fd(), kUffdioMove, &m) == 0) return len;
  int err = errno;
  if (m.move > 0) return static_cast<size_t>(m.move);  // stopped part-way
  if (err == ENOENT) return NotFound("no page to move");
  if (err == EBUSY) return Unavailable("page shared copy-on-write");
  return IoctlError(err, "UFFDIO_MOVE");
}

Status Uffd::Wake(void* addr, size_t len) {
  uffdio_range r{.start = U(addr), .len = len};
  if (ioctl(fd(), UFFDIO_WAKE, &r) < 0) return Status::FromErrno(errno, "UFFDIO_WAKE");
  return Status::Ok();
}

Status Uffd::ReadEvents(std::vector<UffdEvent>* out) {
  uffd_msg msgs[64];
  for (;;) {
    ssize_t n = read(fd(), msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Status::Ok();
      return Status::FromErrno(errno, "read userfaultfd");
    }
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
      const uffd_msg& m = msgs[i];
      UffdEvent e;
      switch (m.event) {
        case UFFD_EVENT_PAGEFAULT:
          e.kind = UffdEvent::Kind::kFault;
          e.write = (m.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0;
          e.address = m.arg.pagefault.address & ~uint64_t{4095};
          break;
        case UFFD_EVENT_REMOVE:
          e = {.kind = UffdEvent::Kind::kRemove, .address = m.arg.remove.start, .end = m.arg.remove.end};
          break;
        case UFFD_EVENT_UNMAP:
          e = {.kind = UffdEvent::Kind::kUnmap, .address = m.arg.remove.start, .end = m.arg.remove.end};
          break;
        case UFFD_EVENT_REMAP:
          e = {.kind = UffdEvent::Kind::kRemap, .address = m.arg.remap.from,
               .end = m.arg.remap.from + m.arg.remap.len, .to = m.arg.remap.to};
          break;
        case UFFD_EVENT_FORK:
          e = {.kind = UffdEvent::Kind::kFork, .fork_fd = static_cast<int>(m.arg.fork.ufd)};
          break;
        default:
          continue;  // an event we did not ask for
      }
      out->push_back(e);
    }
    if (static_cast<size_t>(n) < sizeof msgs) return Status::Ok();
  }
}

}  // namespace tessera::vnode
