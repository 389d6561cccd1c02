// Round trips for every message, and the property every decoder must have:
// any truncation or extension of a valid body is rejected with a protocol
// error, never a crash or a silently short message.
#include <gtest/gtest.h>

#include "proto/c2ctl.h"
#include "proto/c2m.h"
#include "proto/ctl2m.h"
#include "proto/m2ctl.h"

namespace tessera::proto {
namespace {

template <typename M>
Bytes Encode(const M& m) {
  Bytes b;
  Writer w(&b);
  m.Encode(w);
  return b;
}

template <typename M>
void ExpectEveryTruncationFails(const Bytes& body) {
  for (size_t n = 0; n < body.size(); ++n) {
    Result<M> r = M::Decode(ByteSpan(body.data(), n));
    EXPECT_FALSE(r.ok()) << "accepted a body truncated to " << n << " of " << body.size();
  }
  Bytes longer = body;
  longer.push_back(0);
  EXPECT_FALSE(M::Decode(longer).ok()) << "accepted trailing bytes";
}

TEST(MessagesTest, ReadPagesRoundTrips) {
  c2m::ReadPages m{.region = 7, .epoch = 11, .pages = {{1, 2}, {3, 4}}};
  Bytes b = Encode(m);
  Result<c2m::ReadPages> d = c2m::ReadPages::Decode(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->region, 7u);
  EXPECT_EQ(d->epoch, 11u);
  ASSERT_EQ(d->pages.size(), 2u);
  EXPECT_EQ(d->pages[1].fragment, 3u);
  EXPECT_EQ(d->pages[1].slot, 4u);
  ExpectEveryTruncationFails<c2m::ReadPages>(b);
}

TEST(MessagesTest, PageCountsAreBounded) {
  Bytes b;
  Writer w(&b);
  w.U64(1);
  w.U64(1);
  w.U8(0);
  w.U32(0xFFFFFFFF);  // claims 4 G pages in 21 bytes
  EXPECT_EQ(c2m::ReadPages::Decode(b).status().code(), Code::kProtocol);
  Bytes empty;
  Writer w2(&empty);
  w2.U64(1);
  w2.U64(1);
  w2.U8(0);
  w2.U32(0);
  EXPECT_FALSE(c2m::ReadPages::Decode(empty).ok());
}

TEST(MessagesTest, WritePagesAndReplyRoundTrip) {
  uint8_t page[16] = {1, 2, 3};
  c2m::WritePages m{.region = 9, .epoch = 2, .writer = 0xABCD, .done_below = 70, .mode = c2m::WriteMode::kResolve,
                    .pages = {{.ref = {5, 6}, .version = 77, .crc = 42, .data = ByteSpan(page, 16)}}};
  Bytes b = Encode(m);
  Result<c2m::WritePages> d = c2m::WritePages::Decode(b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->epoch, 2u);
  EXPECT_EQ(d->writer, 0xABCDu);
  EXPECT_EQ(d->done_below, 70u);
  EXPECT_EQ(d->mode, c2m::WriteMode::kResolve);
  EXPECT_EQ(d->pages[0].version, 77u);
  EXPECT_EQ(d->pages[0].crc, 42u);
  EXPECT_EQ(d->pages[0].data.size(), 16u);
  EXPECT_EQ(d->pages[0].data[2], 3);
  ExpectEveryTruncationFails<c2m::WritePages>(b);

  c2m::ReadPagesReply rep{.pages = {{.version = 5, .crc = 1, .data = ByteSpan(page, 16)}}};
  Bytes rb = Encode(rep);
  auto rd = c2m::ReadPagesReply::Decode(rb);
  ASSERT_TRUE(rd.ok());
  EXPECT_EQ(rd->pages[0].version, 5u);
  ExpectEveryTruncationFails<c2m::ReadPagesReply>(rb);

  // With previous versions: one more slot per page, present or absent.
  c2m::ReadPagesReply both{.flags = c2m::kWithPrevious,
                           .pages = {{.version = 5, .crc = 1, .data = ByteSpan(page, 16)}, {}},
                           .previous = {{.version = 4, .crc = 2, .data = ByteSpan(page, 16)}, {}}};
  Bytes bb = Encode(both);
  auto bd = c2m::ReadPagesReply::Decode(bb);
  ASSERT_TRUE(bd.ok()) << bd.status().ToString();
  ASSERT_EQ(bd->previous.size(), 2u);
  EXPECT_EQ(bd->previous[0].version, 4u);
  EXPECT_TRUE(bd->previous[1].data.empty());
  ExpectEveryTruncationFails<c2m::ReadPagesReply>(bb);

  using Reason = c2m::Unapplied::Reason;
  c2m::WritePagesReply unapplied{.unapplied = {{0, Reason::kConflict, 7}, {3, Reason::kSuperseded, ~0ull}}};
  Bytes ub = Encode(unapplied);
  auto ud = c2m::WritePagesReply::Decode(ub);
  ASSERT_TRUE(ud.ok()) << ud.status().ToString();
  EXPECT_EQ(ud->unapplied, unapplied.unapplied);
  ExpectEveryTruncationFails<c2m::WritePagesReply>(ub);
  ub[4 + 4] = 3;  // the first page's reason
  EXPECT_EQ(c2m::WritePagesReply::Decode(ub).status().code(), Code::kProtocol);
}

TEST(MessagesTest, UnknownFlagsAndModesAreRefused) {
  c2m::ReadPages r{.region = 1, .epoch = 1, .flags = 2, .pages = {{0, 0}}};
  EXPECT_FALSE(c2m::ReadPages::Decode(Encode(r)).ok());
  c2m::WritePages w{.region = 1, .epoch = 1, .mode = static_cast<c2m::WriteMode>(3)};
  EXPECT_FALSE(c2m::WritePages::Decode(Encode(w)).ok());
  w.mode = c2m::WriteMode::kWrite;
  EXPECT_TRUE(c2m::WritePages::Decode(Encode(w)).ok()) << "a watermark alone";
  w.mode = c2m::WriteMode::kCommit;
  EXPECT_FALSE(c2m::WritePages::Decode(Encode(w)).ok());
}

TEST(MessagesTest, AllocFragmentsValidatesSpecs) {
  ctl2m::AllocFragments m{.region = 3, .fragments = {{0, 256, 4096}, {1, 10, 4096}}};
  Bytes b = Encode(m);
  Result<ctl2m::AllocFragments> d = ctl2m::AllocFragments::Decode(b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->fragments[1].slots, 10u);
  ExpectEveryTruncationFails<ctl2m::AllocFragments>(b);
  m.fragments[0].slot_size = 1 << 20;
  EXPECT_FALSE(ctl2m::AllocFragments::Decode(Encode(m)).ok());
  m.fragments[0].slot_size = 4096;
  m.fragments[0].slots = 0;
  EXPECT_FALSE(ctl2m::AllocFragments::Decode(Encode(m)).ok());
}

TEST(MessagesTest, CloneRequestsRoundTripAndAreChecked) {
  ctl2m::CloneFragments m{.region = 4, .epoch = 1, .source = 3, .fragments = {0, 7}};
  Bytes b = Encode(m);
  Result<ctl2m::CloneFragments> d = ctl2m::CloneFragments::Decode(b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->source, 3u);
  EXPECT_EQ(d->fragments, (std::vector<uint32_t>{0, 7}));
  ExpectEveryTruncationFails<ctl2m::CloneFragments>(b);
  m.source = 4;
  EXPECT_EQ(ctl2m::CloneFragments::Decode(Encode(m)).status().code(), Code::kInvalidArgument);
  m.source = 3;
  m.fragments.clear();
  EXPECT_FALSE(ctl2m::CloneFragments::Decode(Encode(m)).ok());

  ctl2m::FreeFragments f{.region = 4, .fragments = {3, 1}};
  Result<ctl2m::FreeFragments> fd = ctl2m::FreeFragments::Decode(Encode(f));
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(fd->fragments, f.fragments);
  ExpectEveryTruncationFails<ctl2m::FreeFragments>(Encode(f));
  f.fragments.clear();
  EXPECT_FALSE(ctl2m::FreeFragments::Decode(Encode(f)).ok());

  c2ctl::CloneRegion c{.source = "a", .name = "b"};
  Result<c2ctl::CloneRegion> cd = c2ctl::CloneRegion::Decode(Encode(c));
  ASSERT_TRUE(cd.ok());
  EXPECT_EQ(cd->name, "b");
  ExpectEveryTruncationFails<c2ctl::CloneRegion>(Encode(c));
}

TEST(MessagesTest, MembershipRoundTrips) {
  m2ctl::Register reg{.node_id = 0, .incarnation = 99, .addr = "127.0.0.1:7001",
                      .capacity = 1 << 30, .used = 5, .domain = "rack-2", .cluster_id = 0xC1};
  Bytes b = Encode(reg);
  Result<m2ctl::Register> d = m2ctl::Register::Decode(b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->addr, "127.0.0.1:7001");
  EXPECT_EQ(d->capacity, 1u << 30);
  EXPECT_EQ(d->domain, "rack-2");
  EXPECT_EQ(d->cluster_id, 0xC1u);
  ExpectEveryTruncationFails<m2ctl::Register>(b);
  Result<m2ctl::Heartbeat> hb = m2ctl::Heartbeat::Decode(Encode(m2ctl::Heartbeat{1, 2, 3, 4, 5}));
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->cluster_id, 5u);
  ExpectEveryTruncationFails<m2ctl::Heartbeat>(Encode(m2ctl::Heartbeat{1, 2, 3, 4, 5}));

  m2ctl::RegisterReply reply{.node_id = 7, .etcd = "10.0.0.1:2379,10.0.0.2:2379", .lease_ttl_s = 2,
                             .cluster_id = 0xC1};
  Result<m2ctl::RegisterReply> rd = m2ctl::RegisterReply::Decode(Encode(reply));
  ASSERT_TRUE(rd.ok()) << rd.status().ToString();
  EXPECT_EQ(rd->etcd, reply.etcd);
  EXPECT_EQ(rd->lease_ttl_s, 2u);
  EXPECT_EQ(rd->cluster_id, 0xC1u);
  ExpectEveryTruncationFails<m2ctl::RegisterReply>(Encode(reply));
  EXPECT_FALSE(
      m2ctl::RegisterReply::Decode(Encode(m2ctl::RegisterReply{.node_id = 7, .etcd = "a:1", .cluster_id = 1})).ok())
      << "a store without a lease term";
  EXPECT_FALSE(m2ctl::RegisterReply::Decode(Encode(m2ctl::RegisterReply{.node_id = 7})).ok()) << "no cluster";
}

TEST(MessagesTest, RegionInfoChecksTheMap) {
  using c2ctl::FragmentState;
  c2ctl::RegionInfo info{.id = 1, .name = "r", .page_size = 4096, .num_pages = 10, .pages_per_stripe = 4,
                         .redundancy = {Redundancy::Kind::kReplicas, 1, 1}, .epoch = 3,
                         .nodes = {{1, "a:1"}, {2, "b:2"}}, .fragment_nodes = {0, 1, 1, 0, 0, 1},
                         .fragment_states = {FragmentState::kReady, FragmentState::kLost, FragmentState::kReady,
                                             FragmentState::kRebuilding, FragmentState::kReady,
                                             FragmentState::kReady}};
  Bytes b = Encode(info);
  Result<c2ctl::RegionInfo> d = c2ctl::RegionInfo::Decode(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->fragment_nodes, info.fragment_nodes);
  EXPECT_EQ(d->fragment_states, info.fragment_states);
  EXPECT_EQ(d->redundancy, info.redundancy);
  EXPECT_EQ(d->epoch, 3u);
  ExpectEveryTruncationFails<c2ctl::RegionInfo>(b);

  c2ctl::RegionInfo short_map = info;  // 10 pages need 3 stripes of 2 fragments
  short_map.fragment_nodes.resize(4);
  short_map.fragment_states.resize(4);
  EXPECT_FALSE(c2ctl::RegionInfo::Decode(Encode(short_map)).ok());
  c2ctl::RegionInfo bad_node = info;
  bad_node.fragment_nodes[2] = 2;  // no node 2
  EXPECT_FALSE(c2ctl::RegionInfo::Decode(Encode(bad_node)).ok());
  c2ctl::RegionInfo bad_shape = info;
  bad_shape.redundancy = {Redundancy::Kind::kNone, 1, 1};  // "none" with a parity fragment
  EXPECT_FALSE(c2ctl::RegionInfo::Decode(Encode(bad_shape)).ok());
  bad_shape.redundancy = {Redundancy::Kind::kErasure, 30, 3};  // wider than 32
  EXPECT_FALSE(c2ctl::RegionInfo::Decode(Encode(bad_shape)).ok());
}

TEST(MessagesTest, WatchMapsCarriesEpochsAndItsReplyWholeMaps) {
  c2ctl::WatchMaps w{.hold_ms = 15000, .regions = {{7, 3}, {9, 1}}};
  Result<c2ctl::WatchMaps> wd = c2ctl::WatchMaps::Decode(Encode(w));
  ASSERT_TRUE(wd.ok()) << wd.status().ToString();
  EXPECT_EQ(wd->hold_ms, 15000u);
  ASSERT_EQ(wd->regions.size(), 2u);
  EXPECT_EQ(wd->regions[1].id, 9u);
  EXPECT_EQ(wd->regions[0].epoch, 3u);
  ExpectEveryTruncationFails<c2ctl::WatchMaps>(Encode(w));
  w.hold_ms = c2ctl::kMaxWatchHoldMs + 1;
  EXPECT_FALSE(c2ctl::WatchMaps::Decode(Encode(w)).ok()) << "a hold past a minute";

  c2ctl::MapChanges changes;
  changes.maps.push_back({.id = 7, .name = "r", .page_size = 4096, .num_pages = 2, .pages_per_stripe = 2,
                          .redundancy = {Redundancy::Kind::kNone, 1, 0}, .epoch = 4, .nodes = {{1, "a:1"}},
                          .fragment_nodes = {0}, .fragment_states = {c2ctl::FragmentState::kReady}});
  changes.gone = {9};
  Bytes b = Encode(changes);
  Result<c2ctl::MapChanges> d = c2ctl::MapChanges::Decode(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->maps.size(), 1u);
  EXPECT_EQ(d->maps[0].epoch, 4u);
  EXPECT_EQ(d->maps[0].nodes[0].addr, "a:1");
  EXPECT_EQ(d->gone, std::vector<uint64_t>{9});
  ExpectEveryTruncationFails<c2ctl::MapChanges>(b);
  changes.maps[0].fragment_nodes = {1};  // a map that names no such node
  EXPECT_FALSE(c2ctl::MapChanges::Decode(Encode(changes)).ok());
}

TEST(MessagesTest, SlotSizeCoversAPageShare) {
  EXPECT_EQ(c2ctl::SlotSize(4096, 1), 4096u);
  EXPECT_EQ(c2ctl::SlotSize(4096, 4), 1024u);
  EXPECT_EQ(c2ctl::SlotSize(4096, 3), 1368u);  // 1366 rounded up to whole words
  for (int k = 1; k <= 32; ++k) EXPECT_GE(c2ctl::SlotSize(4096, k) * k, 4096u) << k;
}

TEST(MessagesTest, StatusAndListsRoundTrip) {
  c2ctl::ClusterStatusReply s;
  s.nodes.push_back({.id = 1, .addr = "x:1", .capacity = 10, .used = 2, .rss = 3, .alive = true,
                     .ms_since_heartbeat = 12});
  s.regions.regions.push_back({.id = 4, .name = "r", .page_size = 4096, .num_pages = 8, .node_count = 6,
                               .redundancy = {Redundancy::Kind::kErasure, 4, 2},
                               .health = c2ctl::Health::kRebuilding, .stripes = 1, .rebuild_done = 5,
                               .rebuild_total = 9});
  Bytes b = Encode(s);
  Result<c2ctl::ClusterStatusReply> d = c2ctl::ClusterStatusReply::Decode(b);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->nodes[0].alive);
  EXPECT_EQ(d->regions.regions[0].name, "r");
  EXPECT_EQ(d->regions.regions[0].health, c2ctl::Health::kRebuilding);
  EXPECT_EQ(d->regions.regions[0].rebuild_total, 9u);
  EXPECT_EQ(d->regions.regions[0].redundancy.k, 4);
  ExpectEveryTruncationFails<c2ctl::ClusterStatusReply>(b);

  c2ctl::CreateRegion c{.name = "r", .size_bytes = 100, .page_size = 4096};
  ExpectEveryTruncationFails<c2ctl::CreateRegion>(Encode(c));
  c.page_size = 3000;
  EXPECT_EQ(c2ctl::CreateRegion::Decode(Encode(c)).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::proto
