"""Prints LINES deterministic lines for sort to order (keys in scrambled order).

Usage: sort_input.py LINES [WIDTH]
Without WIDTH a line is ~26 bytes; with it, every line is WIDTH bytes (at
least 32) with its newline, like the records of a log or a CSV export.
"""
import sys

lines = int(sys.argv[1])
width = int(sys.argv[2]) if len(sys.argv) > 2 else 0
out = sys.stdout
for i in range(lines):
    line = "%08x %s %d" % ((i * 2654435761) % 4294967291, "abcdefghijklmnopqrstuvwxyz"[i % 26] * (i % 13 + 1), i)
    if width:
        line = (line + " " + ("%d-" % (i * 7919 + 1)) * 60).ljust(max(width, 32) - 1, "x")[: max(width, 32) - 1]
    out.write(line + "\n")
