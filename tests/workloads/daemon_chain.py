"""A chain of forks in which each parent exits at once, as a daemon's does.

Usage: daemon_chain.py MIB GENERATIONS
Deterministic: the same arguments give the same output, run natively or under
`tessera run`. The first process builds MIB MiB of pages; each child, whose
parent has already left, checks them all, rewrites every fourth one and forks
the next. Each prints a digest of everything it sees; under `tessera run` the
pages come from the pool, where the parent's pages had to be saved before it
left, and the last child outlives the program `tessera run` started.
"""
import hashlib
import os
import sys

PAGE = 4096
mib, generations = int(sys.argv[1]), int(sys.argv[2])
pages = mib << 20 >> 12
data = [bytes([i % 251]) * PAGE for i in range(pages)]
for g in range(1, generations + 1):
    sys.stdout.flush()
    if os.fork() != 0:
        os._exit(0)  # the parent leaves the moment it has forked
    digest = hashlib.sha256(b"".join(data)).hexdigest()[:16]
    print("generation", g, "sees", digest, flush=True)
    for p in range(g % 4, pages, 4):
        data[p] = bytes([(p + g) % 251]) * PAGE
