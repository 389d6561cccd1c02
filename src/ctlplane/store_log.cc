#include "ctlplane/store_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crc.h"
#include "common/log.h"

namespace tessera::ctlplane {
namespace {

constexpr uint8_t kPut = 1;
constexpr uint8_t kDelete = 2;
constexpr size_t kMinCompactBytes = 64 << 10;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof v); }
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof v); }
void PutBytes(std::string* out, const std::string& b) {
  PutU32(out, static_cast<uint32_t>(b.size()));
  out->append(b);
}

// Reads the payload's fields in order; any read past the end fails the
// whole payload.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) { return Fixed(v); }
  bool U32(uint32_t* v) { return Fixed(v); }
  bool U64(uint64_t* v) { return Fixed(v); }
  bool Bytes(std::string* v) {
    uint32_t len = 0;
    if (!U32(&len) || in_.size() < len) return false;
    v->assign(in_.substr(0, len));
    in_.remove_prefix(len);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  template <typename T>
  bool Fixed(T* v) {
    if (in_.size() < sizeof(T)) return false;
    std::memcpy(v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }
  std::string_view in_;
};

std::string Record(Revision revision, const std::vector<LoggedChange>& changes) {
  std::string payload;
  PutU64(&payload, static_cast<uint64_t>(revision));
  PutU32(&payload, static_cast<uint32_t>(changes.size()));
  for (const LoggedChange& c : changes) {
    payload.push_back(static_cast<char>(c.deleted ? kDelete : kPut));
    PutBytes(&payload, c.kv.key);
    PutBytes(&payload, c.deleted ? std::string() : c.kv.value);
    PutU64(&payload, static_cast<uint64_t>(c.kv.create_revision));
    PutU64(&payload, static_cast<uint64_t>(c.kv.mod_revision));
  }
  std::string rec;
  PutU32(&rec, Crc32c(payload.data(), payload.size()));
  PutU32(&rec, static_cast<uint32_t>(payload.size()));
  return rec + payload;
}

// One record's payload applied to `kvs`; false if it does not parse.
bool Apply(std::string_view payload, std::map<std::string, KeyValue>* kvs, Revision* revision) {
  Reader r(payload);
  uint64_t rev = 0;
  uint32_t count = 0;
  if (!r.U64(&rev) || !r.U32(&count)) return false;
  std::vector<LoggedChange> changes(count);
  for (LoggedChange& c : changes) {
    uint8_t kind = 0;
    uint64_t create = 0, mod = 0;
    if (!r.U8(&kind) || !r.Bytes(&c.kv.key) || !r.Bytes(&c.kv.value) || !r.U64(&create) || !r.U64(&mod)) return false;
    if (kind != kPut && kind != kDelete) return false;
    c.deleted = kind == kDelete;
    c.kv.create_revision = static_cast<Revision>(create);
    c.kv.mod_revision = static_cast<Revision>(mod);
  }
  if (!r.done()) return false;
  for (LoggedChange& c : changes) {
    if (c.deleted) {
      kvs->erase(c.kv.key);
    } else {
      std::string key = c.kv.key;
      (*kvs)[key] = std::move(c.kv);
    }
  }
  *revision = static_cast<Revision>(rev);
  return true;
}

Result<std::string> ReadFile(int fd, const std::string& path) {
  std::string bytes;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path);
    if (n == 0) return bytes;
    bytes.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<std::unique_ptr<StoreLog>> StoreLog::Open(const std::string& path, std::map<std::string, KeyValue>* kvs,
                                                 Revision* revision) {
  std::unique_ptr<StoreLog> log(new StoreLog(path));
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + path);
  TS_ASSIGN_OR_RETURN(std::string bytes, ReadFile(fd.get(), path));
  size_t good = 0;
  TS_RETURN_IF_ERROR(log->Replay(bytes, &good, kvs, revision));
  if (good != bytes.size() && ::ftruncate(fd.get(), static_cast<off_t>(good)) != 0) {
    return Status::FromErrno(errno, "ftruncate " + path);
  }
  if (::lseek(fd.get(), 0, SEEK_END) < 0) return Status::FromErrno(errno, "lseek " + path);
  log->fd_ = std::move(fd);
  log->log_bytes_ = good;
  TS_RETURN_IF_ERROR(log->MaybeCompact(*kvs, *revision));
  return log;
}

Status StoreLog::Replay(const std::string& bytes, size_t* good, std::map<std::string, KeyValue>* kvs,
                        Revision* revision) {
  size_t pos = 0;
  while (bytes.size() - pos >= 8) {
    uint32_t crc = 0, len = 0;
    std::memcpy(&crc, bytes.data() + pos, 4);
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    if (bytes.size() - pos - 8 < len) break;
    std::string_view payload(bytes.data() + pos + 8, len);
    if (Crc32c(payload.data(), payload.size()) != crc || !Apply(payload, kvs, revision)) break;
    pos += 8 + len;
  }
  if (pos != bytes.size()) {
    log::Warn("{}: dropping {} bytes from offset {}: a record there is torn or damaged", path_, bytes.size() - pos,
              pos);
  }
  *good = pos;
  return Status::Ok();
}

Status StoreLog::WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write " + path_);
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "fdatasync " + path_);
  return Status::Ok();
}

Status StoreLog::Append(Revision revision, const std::vector<LoggedChange>& changes) {
  std::string rec = Record(revision, changes);
  Status s = WriteAll(fd_.get(), rec);
  if (!s.ok()) {
    // A partial record would hide every later one from the replay: cut it.
    if (::ftruncate(fd_.get(), static_cast<off_t>(log_bytes_)) != 0 || ::lseek(fd_.get(), 0, SEEK_END) < 0) {
      return Status::FromErrno(errno, "ftruncate " + path_ + " after " + s.ToString());
    }
    return s;
  }
  log_bytes_ += rec.size();
  return Status::Ok();
}

Status StoreLog::MaybeCompact(const std::map<std::string, KeyValue>& kvs, Revision revision) {
  if (log_bytes_ < kMinCompactBytes || log_bytes_ <= 4 * live_bytes_) return Status::Ok();
  std::vector<LoggedChange> all;
  for (const auto& [key, kv] : kvs) {
    if (kv.lease == 0) all.push_back({.kv = kv});
  }
  std::string snapshot = Record(revision, all);
  live_bytes_ = snapshot.size();
  if (log_bytes_ <= 4 * live_bytes_) return Status::Ok();
  const std::string tmp = path_ + ".compact";
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + tmp);
  if (Status s = WriteAll(fd.get(), snapshot); !s.ok()) {
    ::unlink(tmp.c_str());  // a full disk must not keep a half-written copy
    return s;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Status::FromErrno(errno, "rename " + tmp);
  // The rename is durable once the directory is.
  const size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid() || ::fsync(dir_fd.get()) != 0) return Status::FromErrno(errno, "fsync " + dir);
  fd_ = std::move(fd);
  log_bytes_ = snapshot.size();
  return Status::Ok();
}

}  // namespace tessera::ctlplane
