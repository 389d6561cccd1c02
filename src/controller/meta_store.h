// MetaStore: where the controller keeps what must survive its restart —
// memory nodes and regions — as string keys and values. One machine uses
// FileMetaStore, an embedded log on local disk; the multi-host deployment
// puts the same keys in etcd behind this interface.
//
// Every mutation is durable when it returns ok.
//
// Thread-safety: implementations are not thread-safe; the controller's server
// thread owns its store.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/result.h"

namespace tessera::controller {

class MetaStore {
 public:
  virtual ~MetaStore() = default;
  virtual Status Put(const std::string& key, const std::string& value) = 0;
  virtual Status Delete(const std::string& key) = 0;
  // Every key starting with `prefix`, in key order.
  virtual Result<std::map<std::string, std::string>> List(const std::string& prefix) = 0;
};

// Opens (creating if needed) the log at `path`. A record torn by a crash at
// the log's tail is dropped; the log is compacted on open when it has grown
// to more than twice its live size.
Result<std::unique_ptr<MetaStore>> OpenFileMetaStore(const std::string& path);

}  // namespace tessera::controller
