"""`mailcore bench pop3`: a tiny real run against Dovecot's pop3d, as a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys


def test_bench_pop3_prints_both_workloads_against_dovecot() -> None:
    args = ["bench", "pop3", "--rounds", "1", "--messages", "5", "--size", "3000", "--list", "7"]
    proc = subprocess.run(
        [sys.executable, "-m", "mailcore", *args], capture_output=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode()
    table = proc.stdout.decode()
    assert table.startswith("POP3: median of 1 alternating rounds")
    assert "| workload | mailcore | Dovecot | mailcore / Dovecot |" in table
    # Every run is checked inside (all octets received, all messages listed);
    # the rows carry a time for each server and the ratio.
    retr = re.search(
        r"^\| RETR 5 x 2\.92969 KiB \| [\d,]+ ms \([\d,]+ MB/s\) \| "
        r"[\d,]+ ms \([\d,]+ MB/s\) \| \*\*\d+\.\d\dx\*\* \|$",
        table,
        re.M,
    )
    assert retr is not None, table
    listing = re.search(
        r"^\| LIST\+UIDL of 7 \| [\d,]+ ms \| [\d,]+ ms \| \*\*\d+\.\d\dx\*\* \|$", table, re.M
    )
    assert listing is not None, table
