"""Prints an SQL script for `sqlite3 :memory:`: a table of ROWS rows and an index
built in the in-memory database, then a fixed set of queries (scans, grouping,
sorting, a join and index range lookups). Deterministic: no random functions.

Usage: sqlite_queries.py ROWS
"""
import sys

rows = int(sys.argv[1])
print(f"""PRAGMA cache_size = -1000000;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows})
INSERT INTO t SELECT i, (i * 2654435761) % 1000003,
  printf('%08x-%s', (i * 40503) % 65521, substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26) || i) FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(k), min(s), max(s) FROM t;
SELECT k % 7, count(*), sum(id) FROM t GROUP BY k % 7 ORDER BY 1;
SELECT id, k, s FROM t ORDER BY s DESC LIMIT 5;
SELECT count(*) FROM t a JOIN t b ON a.k = b.id WHERE a.id % 100 = 0;
SELECT sum(length(s)) FROM t WHERE k BETWEEN 1000 AND 500000;""")
