"""Parent data read by forked workers that write their own, and prints digests.

Usage: fork_workers.py MIB [WORKERS]
Deterministic: the same arguments give the same output, run natively or under
`tessera run`. The parent builds MIB MiB of pages; a multiprocessing pool
with the fork start method hashes slices of them, each worker also filling
memory of its own and overwriting one of the parent's pages (which the parent
must never see); then a child forked with os.fork changes a page and hashes
everything, and the parent hashes everything after it. Children that exec
at once (subprocess) run on the way.
"""
import hashlib
import multiprocessing
import os
import subprocess
import sys

PAGE = 4096
mib = int(sys.argv[1])
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
pages = mib << 20 >> 12
data = [bytes([i % 251]) * PAGE for i in range(pages)]


def work(k):
    h = hashlib.sha256()
    for b in data[k::workers * 2]:
        h.update(b)
    own = bytearray(max(pages * PAGE // (workers * 4), PAGE))
    for i in range(0, len(own), PAGE):
        own[i] = k + 1
    data[k] = b"x" * PAGE  # this worker's copy only
    return h.hexdigest()[:16], sum(own[::PAGE])


def digest():
    return hashlib.sha256(b"".join(data)).hexdigest()[:16]


if __name__ == "__main__":
    print(subprocess.run(["echo", "exec child"], capture_output=True, text=True, check=True).stdout.strip())
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for r in pool.map(work, range(workers * 2)):
            print(*r)
    pid = os.fork()
    if pid == 0:
        data[0] = b"y" * PAGE
        print("child", digest(), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
    print("parent", digest())
