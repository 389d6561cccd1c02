// The memory node's request handlers, one file each (handle_<verb>.cc), like
// LegoOS's memory-side handle_*.c. Each decodes its request, validates every
// name in it before touching memory, and appends exactly one reply frame.
// A request that fails validation changes nothing.
//
// Thread-safety: called only on the memory node's server thread.
#pragma once

#include "memnode/fragment_store.h"
#include "proto/frame.h"

namespace tessera::memnode {

void HandleReadPages(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                     proto::Bytes* out);
void HandleWritePages(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                      proto::Bytes* out);
void HandleAllocFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                          proto::Bytes* out);
void HandleCloneFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                          proto::Bytes* out);
void HandleFreeRegion(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                      proto::Bytes* out);
void HandleFreeFragments(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body,
                         proto::Bytes* out);
void HandleSetEpoch(FragmentStore& store, const proto::FrameHeader& req, proto::ByteSpan body, proto::Bytes* out);

}  // namespace tessera::memnode
