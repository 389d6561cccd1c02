"""Prints LINES deterministic lines for sort to order (keys in scrambled order).

Usage: sort_input.py LINES
"""
import sys

lines = int(sys.argv[1])
out = sys.stdout
for i in range(lines):
    out.write("%08x %s %d\n" % ((i * 2654435761) % 4294967291, "abcdefghijklmnopqrstuvwxyz"[i % 26] * (i % 13 + 1), i))
