"""Children forked with os.fork that read some of the parent's data, then exec.

Usage: fork_exec.py MIB [CHILDREN]
Deterministic: the same arguments give the same output, run natively or under
`tessera run`. The parent builds MIB MiB of pages; each child hashes a slice
of them (pages the parent had evicted, under `tessera run`) and execs
/bin/echo to print the digest; the parent waits for it, changes a page, and
prints a digest of everything at the end. Under `tessera run` the children
read the parent's pages in the pool and need no copy of them.
"""
import hashlib
import os
import sys

PAGE = 4096
mib = int(sys.argv[1])
children = int(sys.argv[2]) if len(sys.argv) > 2 else 5
pages = mib << 20 >> 12
data = [bytes([i % 251]) * PAGE for i in range(pages)]
sys.stdout.flush()
for c in range(children):
    pid = os.fork()
    if pid == 0:
        h = hashlib.sha256()
        for b in data[c * 7 : c * 7 + 64]:
            h.update(b)
        os.execv("/bin/echo", ["echo", "child", str(c), h.hexdigest()[:16]])
    _, status = os.waitpid(pid, 0)
    print("child", c, "status", status, flush=True)
    data[c * 13] = bytes([c]) * PAGE
h = hashlib.sha256()
for b in data:
    h.update(b)
print("parent", h.hexdigest())
