// StoreLog: what makes the embedded store durable — an append-only file with
// a record per revision holding that revision's changes to keys without a
// lease, fdatasync'ed before the store applies them. Keys under a lease are
// not kept: a lease does not outlive the process that holds the store, so
// after a restart its keys are gone, as if every lease had expired at once.
// Their revisions are kept (a record with no changes), so the store's
// revision never goes back and a watcher resuming from its last revision
// misses nothing.
//
//   log      = record*
//   record   = crc:u32 len:u32 payload[len]           crc = CRC32C(payload)
//   payload  = revision:u64 count:u32 change*count
//   change   = kind:u8 (1 put, 2 delete) key:bytes value:bytes
//              create_revision:u64 mod_revision:u64
//   bytes    = len:u32 byte*len
// Integers are little-endian. A record torn by a crash at the tail is
// dropped on open; a record that fails its CRC elsewhere ends the replay
// there too (what follows it cannot be trusted to apply in order).
//
// The log is rewritten as one record of every key when it has grown to more
// than four times that size (at open, and as it grows).
//
// Ownership: owns its file. Thread-safety: not thread-safe; the store calls it
// under its own lock.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "ctlplane/store.h"

namespace tessera::ctlplane {

struct LoggedChange {
  bool deleted = false;
  KeyValue kv;  // key always; value and revisions for a put
};

class StoreLog {
 public:
  // Opens (creating if need be) the log at `path` and replays it into `*kvs`
  // and `*revision`, which must start empty and at 1.
  static Result<std::unique_ptr<StoreLog>> Open(const std::string& path, std::map<std::string, KeyValue>* kvs,
                                                Revision* revision);

  // Makes `changes`, the store's move to `revision`, durable.
  Status Append(Revision revision, const std::vector<LoggedChange>& changes);
  // Rewrites the log as `kvs` at `revision` if it has grown past four times
  // their size. `kvs` may hold leased keys; they are left out.
  Status MaybeCompact(const std::map<std::string, KeyValue>& kvs, Revision revision);

 private:
  explicit StoreLog(std::string path) : path_(std::move(path)) {}
  Status Replay(const std::string& bytes, size_t* good, std::map<std::string, KeyValue>* kvs, Revision* revision);
  Status WriteAll(int fd, const std::string& bytes);

  const std::string path_;
  UniqueFd fd_;
  size_t log_bytes_ = 0;   // the file's size
  size_t live_bytes_ = 0;  // a snapshot's size at the last compaction or open
};

}  // namespace tessera::ctlplane
