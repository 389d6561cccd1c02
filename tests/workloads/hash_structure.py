"""Builds a large Python structure and prints a digest of it.

Usage: hash_structure.py MIB
Deterministic: the same MIB gives the same digest, run natively or under
`tessera run`. It allocates about MIB MiB of objects (dicts, lists, strings
and bytes of mixed sizes), revisits them in an order unlike the one they were
made in, mutates some, and hashes everything.
"""
import hashlib
import random
import sys

mib = int(sys.argv[1])
rng = random.Random(42)
table = {}
made = 0
i = 0
while made < mib << 20:
    kind = i % 4
    if kind == 0:
        v = str(i) * rng.randint(1, 40)
    elif kind == 1:
        v = rng.randbytes(rng.randint(64, 8192))
    elif kind == 2:
        v = [i * 7 + k for k in range(rng.randint(1, 64))]
    else:
        v = {"k%d" % k: k * i for k in range(rng.randint(1, 16))}
    table[i] = v
    made += sys.getsizeof(v) + (8 * len(v) if kind == 2 else 0) + (100 * len(v) if kind == 3 else 0)
    i += 1

# Touch in a scattered order, mutating every seventh entry.
keys = list(table)
rng.shuffle(keys)
for n, k in enumerate(keys):
    if n % 7 == 0:
        v = table[k]
        if isinstance(v, list):
            v.append(n)
        elif isinstance(v, dict):
            v["m"] = n
        else:
            table[k] = v[::-1]

h = hashlib.sha256()
for k in sorted(table):
    h.update(repr(table[k]).encode())
print(len(table), h.hexdigest())
