// FileMetaStore: an append-only log of put/delete records, replayed into a map
// on open and fsync'ed on every write. The controller's metadata is small
// (kilobytes per region) and changes at human speed, so simplicity wins.
//
//   log    = record*
//   record = crc:u32 len:u32 payload[len]     crc = CRC32C(payload)
//   payload= op:u8 (1 put, 2 delete) key:string(u16 len) value:blob(u32 len)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/crc.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "controller/meta_store.h"
#include "proto/wire.h"

namespace tessera::controller {
namespace {

constexpr uint8_t kPut = 1;
constexpr uint8_t kDelete = 2;

class FileMetaStore final : public MetaStore {
 public:
  explicit FileMetaStore(std::string path) : path_(std::move(path)) {}

  Status Open();
  Status Put(const std::string& key, const std::string& value) override {
    TS_RETURN_IF_ERROR(Append(kPut, key, value));
    map_[key] = value;
    return Status::Ok();
  }
  Status Delete(const std::string& key) override {
    if (!map_.count(key)) return Status::Ok();
    TS_RETURN_IF_ERROR(Append(kDelete, key, ""));
    map_.erase(key);
    return Status::Ok();
  }
  Result<std::map<std::string, std::string>> List(const std::string& prefix) override {
    std::map<std::string, std::string> out;
    for (auto it = map_.lower_bound(prefix); it != map_.end() && it->first.starts_with(prefix); ++it) {
      out.insert(*it);
    }
    return out;
  }

 private:
  static proto::Bytes Encode(uint8_t op, const std::string& key, const std::string& value);
  Status Append(uint8_t op, const std::string& key, const std::string& value);
  Status WriteFile(int fd, const proto::Bytes& bytes);
  Status Replay(const proto::Bytes& log, size_t* good_bytes);
  Status Compact();

  std::string path_;
  UniqueFd fd_;
  std::map<std::string, std::string> map_;
};

proto::Bytes FileMetaStore::Encode(uint8_t op, const std::string& key, const std::string& value) {
  proto::Bytes payload;
  proto::Writer w(&payload);
  w.U8(op);
  w.String(key);
  w.Blob(proto::ByteSpan(reinterpret_cast<const uint8_t*>(value.data()), value.size()));
  proto::Bytes rec;
  proto::Writer r(&rec);
  r.U32(Crc32c(payload.data(), payload.size()));
  r.U32(static_cast<uint32_t>(payload.size()));
  r.Raw(payload.data(), payload.size());
  return rec;
}

Status FileMetaStore::WriteFile(int fd, const proto::Bytes& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path_);
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "fdatasync " + path_);
  return Status::Ok();
}

Status FileMetaStore::Append(uint8_t op, const std::string& key, const std::string& value) {
  if (key.size() > proto::kMaxString) return InvalidArgument("metadata key too long: " + key);
  return WriteFile(fd_.get(), Encode(op, key, value));
}

Status FileMetaStore::Replay(const proto::Bytes& log, size_t* good_bytes) {
  size_t pos = 0;
  while (log.size() - pos >= 8) {
    proto::Reader h(proto::ByteSpan(log.data() + pos, 8));
    uint32_t crc = h.U32();
    uint32_t len = h.U32();
    if (log.size() - pos - 8 < len) break;
    proto::ByteSpan payload(log.data() + pos + 8, len);
    if (Crc32c(payload.data(), payload.size()) != crc) break;
    proto::Reader r(payload);
    uint8_t op = r.U8();
    std::string key = r.String();
    proto::ByteSpan value = r.Blob();
    if (!r.Finish("metadata record").ok() || (op != kPut && op != kDelete)) break;
    if (op == kPut) {
      map_[key] = std::string(value.begin(), value.end());
    } else {
      map_.erase(key);
    }
    pos += 8 + len;
  }
  *good_bytes = pos;
  return Status::Ok();
}

Status FileMetaStore::Open() {
  UniqueFd fd(::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + path_);
  proto::Bytes records;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path_);
    if (n == 0) break;
    records.insert(records.end(), buf, buf + n);
  }
  size_t good = 0;
  TS_RETURN_IF_ERROR(Replay(records, &good));
  if (good != records.size()) {
    log::Warn("{}: dropping {} bytes of a torn record at the end of the log", path_, records.size() - good);
    if (::ftruncate(fd.get(), static_cast<off_t>(good)) != 0) return Status::FromErrno(errno, "ftruncate " + path_);
  }
  if (::lseek(fd.get(), 0, SEEK_END) < 0) return Status::FromErrno(errno, "lseek " + path_);
  fd_ = std::move(fd);
  size_t live = 0;
  for (auto& [k, v] : map_) live += k.size() + v.size() + 15;
  if (good > 4096 && good > 2 * live) return Compact();
  return Status::Ok();
}

Status FileMetaStore::Compact() {
  std::string tmp = path_ + ".compact";
  UniqueFd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + tmp);
  proto::Bytes all;
  for (auto& [k, v] : map_) {
    proto::Bytes rec = Encode(kPut, k, v);
    all.insert(all.end(), rec.begin(), rec.end());
  }
  TS_RETURN_IF_ERROR(WriteFile(fd.get(), all));
  if (::rename(tmp.c_str(), path_.c_str()) != 0) return Status::FromErrno(errno, "rename " + tmp);
  if (::lseek(fd.get(), 0, SEEK_END) < 0) return Status::FromErrno(errno, "lseek " + tmp);
  fd_ = std::move(fd);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<MetaStore>> OpenFileMetaStore(const std::string& path) {
  auto s = std::make_unique<FileMetaStore>(path);
  TS_RETURN_IF_ERROR(s->Open().With("metadata store"));
  return std::unique_ptr<MetaStore>(std::move(s));
}

}  // namespace tessera::controller
