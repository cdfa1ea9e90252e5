#!/usr/bin/env python3
"""What a flood of output costs the core when connections subscribe to logs and never read.

A component writes LINES lines of 16 kB (156 MB by default) as fast as `yes` can; SUBSCRIBERS
connections subscribe to every component's logs and then never read (a hung panel, a stopped
`logs -f`). Printed for 0 and for SUBSCRIBERS subscribers, the median of RUNS runs each: how long
the core took to take the whole flood, its CPU time, and its peak resident memory (VmHWM). A
subscriber that never reads should cost the core little: it is bounded to 4 MiB of queued lines,
and since the lines are encoded once and shared, many of them cost about one queue.

Each run has its own core (private socket and data dir in a temp dir), stopped afterwards.

    scripts/bench/log_fanout.py [BINARY]   (default: target/release/hms-console, built if missing)
    HMS_FANOUT_SUBSCRIBERS=20 HMS_FANOUT_LINES=10000 HMS_FANOUT_RUNS=3
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
HELLO = b'{"type":"hello","version":2,"client":"fanout-bench"}\n'
SUBSCRIBE = b'{"type":"request","id":1,"request":{"op":"subscribe","topics":["logs"]}}\n'


def core_pid(socket_path):
    """The core (not its reaper) serving `socket_path`."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        if comm == "hms-core" and socket_path.encode() in cmdline:
            return int(p)
    raise SystemExit(f"no core found for {socket_path}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def one_run(hms, subscribers, lines, deadline=120.0):
    work = tempfile.mkdtemp(prefix="hms-fanout.")
    sock = os.path.join(work, "sock")
    go = os.path.join(work, "go")
    os.mkfifo(go)
    config = os.path.join(work, "hms.toml")
    # The flood waits on a fifo, so that the subscribers are in place before it starts.
    with open(config, "w") as f:
        f.write(
            "[[component]]\n"
            'name = "flood"\n'
            f'command = ["sh", "-c", "read go < {go}; '
            "yes \\\"$(head -c 16000 /dev/zero | tr '\\\\0' x)\\\" | "
            f'head -n {lines}"]\n'
            'restart = "temporary"\n'
            "log_lines = 100\n"
        )
    env = dict(os.environ, HMS_SOCKET=sock, HMS_DATA_DIR=os.path.join(work, "data"))
    try:
        subprocess.run([hms, "up", "-c", config, "--detach"], env=env, check=True,
                       capture_output=True)
        pid = core_pid(sock)
        held = []
        for _ in range(subscribers):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(HELLO)
            s.recv(4096)
            s.sendall(SUBSCRIBE)
            held.append(s)
        # The subscriptions are answered before the flood starts.
        time.sleep(0.3)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        with open(go, "w") as f:
            f.write("go\n")
        while True:
            out = subprocess.run([hms, "status", "--json", "flood"], env=env,
                                 capture_output=True, text=True)
            state = json.loads(out.stdout)[0]["state"] if out.returncode == 0 else "?"
            if state not in ("running", "starting"):
                break
            if time.monotonic() - t0 > deadline:
                raise SystemExit(f"the flood did not end within {deadline} s")
            time.sleep(0.02)
        took, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        peak = peak_rss_mb(pid)
        for s in held:
            s.close()
        return took, cpu, peak
    finally:
        subprocess.run([hms, "down"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    hms = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/hms-console")
    if not os.access(hms, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    hms = os.path.realpath(hms)
    subscribers = int(os.environ.get("HMS_FANOUT_SUBSCRIBERS", "20"))
    lines = int(os.environ.get("HMS_FANOUT_LINES", "10000"))
    runs = int(os.environ.get("HMS_FANOUT_RUNS", "3"))
    mb = lines * 16000 / 1e6
    print(f"log fan-out: {mb:.0f} MB of 16-kB lines, medians of {runs} runs")
    figures = {}
    for n in (0, subscribers):
        results = [one_run(hms, n, lines) for _ in range(runs)]
        took, cpu, peak = (statistics.median(r[i] for r in results) for i in range(3))
        figures[n] = (took, cpu, peak)
        print(f"  {n:3d} subscribers that never read: {took:5.2f} s, "
              f"core CPU {cpu:5.2f} s, peak RSS {peak:5.0f} MB")
    (t0, c0, p0), (t1, c1, p1) = figures[0], figures[subscribers]
    print(f"  {subscribers} stuck subscribers cost {t1 / t0:.2f}x the time, {c1 / c0:.2f}x the "
          f"CPU and {p1 - p0:.0f} MB (goal: about one 4-MiB queue, not {subscribers})")


if __name__ == "__main__":
    main()
