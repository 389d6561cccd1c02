// The preload shim's exported symbols: the malloc family and anonymous
// mmap/munmap/mremap/madvise. A call goes to the managed heap (heap.h) when
// the runtime is up, the calling thread is not one of Tessera's own (those
// are marked, and must never allocate from the memory they serve), and the
// request is at least TESSERA_THRESHOLD bytes; everything else goes to the C
// library. free/realloc/malloc_usable_size tell the two heaps apart by
// address. Allocations made before the runtime started stay in the C
// library's heap for good.
//
// No exceptions leave these functions, and none of them allocates through
// itself: the runtime is started with the calling thread marked unmanaged,
// and our own mmaps are raw system calls.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "preload/heap.h"
#include "preload/runtime.h"

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {

using tessera::preload::ManagedHeap;

std::atomic<ManagedHeap*> g_heap{nullptr};
size_t g_threshold = 0;
// initial-exec: a thread's first access must not allocate (as the general
// dynamic model's __tls_get_addr may).
__attribute__((tls_model("initial-exec"))) thread_local bool t_unmanaged = false;
size_t (*g_libc_usable_size)(void*) = nullptr;

void MarkUnmanaged() { t_unmanaged = true; }

// A child forked without exec keeps the heap: the agent serves its copy of
// the range (a copy of the parent's pages, made at the memory nodes). The
// heap's locks are held across the fork so that the copy is consistent.
void BeforeFork() {
  if (ManagedHeap* h = g_heap.load()) h->LockForFork();
}

void AfterForkInParent() {
  ManagedHeap* h = g_heap.load();
  if (h == nullptr) return;
  h->UnlockAfterFork();
  // Our other threads may allocate again while we wait for the agent.
  tessera::preload::OnForkParent();
}

void AfterForkInChild() {
  ManagedHeap* h = g_heap.load();
  if (h == nullptr) return;
  h->UnlockAfterFork();
  tessera::preload::OnForkChild();
}

ManagedHeap* HeapFor(size_t n) {
  ManagedHeap* h = g_heap.load(std::memory_order_acquire);
  return (h != nullptr && !t_unmanaged && n >= g_threshold) ? h : nullptr;
}

ManagedHeap* Owner(const void* p) {
  ManagedHeap* h = g_heap.load(std::memory_order_acquire);
  return (h != nullptr && p != nullptr && h->Owns(p)) ? h : nullptr;
}

void* Failed() {
  errno = ENOMEM;
  return nullptr;
}

bool MulOverflows(size_t a, size_t b, size_t* out) { return __builtin_mul_overflow(a, b, out); }

long RawMmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

// syscall() reports failure as -1 with errno set.
void* MmapResult(long r) { return r == -1 ? MAP_FAILED : reinterpret_cast<void*>(r); }

__attribute__((constructor)) void StartShim() {
  t_unmanaged = true;
  if (const char* t = std::getenv("TESSERA_THRESHOLD")) g_threshold = std::strtoull(t, nullptr, 10);
  g_libc_usable_size = reinterpret_cast<size_t (*)(void*)>(dlsym(RTLD_NEXT, "malloc_usable_size"));
  auto heap = tessera::preload::StartRuntime(MarkUnmanaged);
  if (!heap.ok()) {
    std::fprintf(stderr, "tessera: cannot put this program's memory in the pool: %s\n",
                 heap.status().ToString().c_str());
    std::_Exit(125);
  }
  if (*heap != nullptr) pthread_atfork(BeforeFork, AfterForkInParent, AfterForkInChild);
  g_heap.store(*heap, std::memory_order_release);
  t_unmanaged = false;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* malloc(size_t n) {
  if (ManagedHeap* h = HeapFor(n)) {
    void* p = h->Malloc(n);
    return p != nullptr ? p : Failed();
  }
  return __libc_malloc(n);
}

__attribute__((visibility("default"))) void free(void* p) {
  if (ManagedHeap* h = Owner(p)) return h->Free(p);
  __libc_free(p);
}

__attribute__((visibility("default"))) void* calloc(size_t n, size_t size) {
  size_t total;
  if (MulOverflows(n, size, &total)) return Failed();
  if (ManagedHeap* h = HeapFor(total)) {
    void* p = h->Malloc(total);
    if (p == nullptr) return Failed();
    // Whole pages come from free pages, which are always zero.
    if (total <= ManagedHeap::kMaxSmall) std::memset(p, 0, total);
    return p;
  }
  return __libc_calloc(n, size);
}

__attribute__((visibility("default"))) void* realloc(void* p, size_t n) {
  ManagedHeap* owner = Owner(p);
  if (owner == nullptr) {
    if (p != nullptr || HeapFor(n) == nullptr) return __libc_realloc(p, n);
    return malloc(n);
  }
  if (n == 0) {
    owner->Free(p);
    return nullptr;
  }
  size_t have = owner->UsableSize(p);
  if (n <= have && n >= have / 2) return p;
  // A buffer grown a little at a time (a shell reading a command's output)
  // would otherwise be copied whole at every page it gains.
  if (have > ManagedHeap::kMaxSmall && n > ManagedHeap::kMaxSmall && owner->Resize(p, n)) return p;
  void* q = malloc(n);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, n < have ? n : have);
  owner->Free(p);
  return q;
}

__attribute__((visibility("default"))) void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (MulOverflows(n, size, &total)) return Failed();
  return realloc(p, total);
}

__attribute__((visibility("default"))) void* memalign(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (ManagedHeap* h = HeapFor(n)) {
    void* p = h->Memalign(align, n);
    return p != nullptr ? p : Failed();
  }
  return __libc_memalign(align, n);
}

__attribute__((visibility("default"))) void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

__attribute__((visibility("default"))) int posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  int saved = errno;
  void* p = memalign(align, n);
  if (p == nullptr) return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

__attribute__((visibility("default"))) void* valloc(size_t n) { return memalign(ManagedHeap::kPage, n); }

__attribute__((visibility("default"))) void* pvalloc(size_t n) {
  size_t rounded = (n + ManagedHeap::kPage - 1) / ManagedHeap::kPage * ManagedHeap::kPage;
  return memalign(ManagedHeap::kPage, rounded == 0 ? ManagedHeap::kPage : rounded);
}

__attribute__((visibility("default"))) size_t malloc_usable_size(void* p) {
  if (ManagedHeap* h = Owner(p)) return h->UsableSize(p);
  return (p != nullptr && g_libc_usable_size != nullptr) ? g_libc_usable_size(p) : 0;
}

__attribute__((visibility("default"))) void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  const bool plain = addr == nullptr && (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) &&
                     !(flags & (MAP_FIXED | MAP_GROWSDOWN | MAP_HUGETLB | MAP_STACK)) &&
                     prot == (PROT_READ | PROT_WRITE);
  if (plain) {
    if (ManagedHeap* h = HeapFor(len)) {
      void* p = h->MapPages(len);
      if (p == nullptr) {
        errno = ENOMEM;
        return MAP_FAILED;
      }
      return p;
    }
  }
  return MmapResult(RawMmap(addr, len, prot, flags, fd, off));
}

__attribute__((visibility("default"))) void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off_t off) {
  return mmap(addr, len, prot, flags, fd, off);
}

__attribute__((visibility("default"))) int munmap(void* addr, size_t len) {
  if (ManagedHeap* h = Owner(addr)) {
    if (h->UnmapPages(addr, len)) return 0;
    errno = EINVAL;
    return -1;
  }
  long r = syscall(SYS_munmap, addr, len);
  return r < 0 ? -1 : 0;
}

__attribute__((visibility("default"))) void* mremap(void* old, size_t old_len, size_t new_len, int flags, ...) {
  ManagedHeap* h = Owner(old);
  if (h == nullptr) {
    void* new_addr = nullptr;
    if (flags & MREMAP_FIXED) {
      va_list ap;
      va_start(ap, flags);
      new_addr = va_arg(ap, void*);
      va_end(ap);
    }
    return MmapResult(syscall(SYS_mremap, old, old_len, new_len, flags, new_addr));
  }
  // Shrink in place; grow in place when the pages after a whole mapping are
  // free, else by copy to new pages.
  const size_t old_bytes = (old_len + ManagedHeap::kPage - 1) / ManagedHeap::kPage * ManagedHeap::kPage;
  if (new_len > old_len && h->UsableSize(old) == old_bytes && h->Resize(old, new_len)) return old;
  if (new_len <= old_len) {
    size_t keep = (new_len + ManagedHeap::kPage - 1) / ManagedHeap::kPage * ManagedHeap::kPage;
    if (keep < old_len && !h->UnmapPages(static_cast<char*>(old) + keep, old_len - keep)) {
      errno = EINVAL;
      return MAP_FAILED;
    }
    return old;
  }
  if (!(flags & MREMAP_MAYMOVE) || (flags & MREMAP_FIXED)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  void* p = h->MapPages(new_len);
  if (p == nullptr) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  std::memcpy(p, old, old_len);
  h->UnmapPages(old, old_len);
  return p;
}

__attribute__((visibility("default"))) int madvise(void* addr, size_t len, int advice) {
  if (Owner(addr) != nullptr) {
    // MADV_FREE lets the kernel drop pages behind the pager's back; zeros
    // are what it permits the program to see, so say so now instead.
    if (advice == MADV_FREE) advice = MADV_DONTNEED;
    // The range stays in 4 KiB pages.
    if (advice == MADV_HUGEPAGE) return 0;
  }
  long r = syscall(SYS_madvise, addr, len, advice);
  return r < 0 ? -1 : 0;
}

}  // extern "C"
