// ImageStore: the pool side of a program image, as the agent (agent.h) sees
// it — its pages, and copies of them for the children it forks. `tessera
// run` keeps them in regions (cmd/region_store.h); tests in memory.
//
// Thread-safety: any thread.
#pragma once

#include <memory>

#include "common/result.h"
#include "tessera/client.h"

namespace tessera::vnode {

class ImageStore {
 public:
  virtual ~ImageStore() = default;
  // A queue over the image's pages (a pager's).
  virtual std::unique_ptr<IoQueue> NewQueue() = 0;
  // A copy of the pages as they are now; nobody is writing them meanwhile.
  // The copy is given back when the store is destroyed.
  virtual Result<std::unique_ptr<ImageStore>> Clone() = 0;
  // Called when the image forks, before the child is served from a lazy
  // copy of this store: a store that is itself such a copy, not yet made,
  // makes it now (its parent may write the pages it is to be made from).
  virtual Status BeforeFork() { return Status::Ok(); }
};

}  // namespace tessera::vnode
