#!/usr/bin/env python3
"""Capture a real board's demo from its serial console, then collect it.

    tools/bench/capture.py /dev/ttyUSB0

sets the port to 115200 8N1 raw (termios, no pyserial needed), echoes every
line and saves it to build/results/rpi4/board/demo.log until the kernel's
`@exit` line, then runs collect.py on that log with `--board rpi4 --accel
hw`. Power the board (or press its reset) after starting this: the log
begins with the kernel's banner. Exit status: the collector's; 1 if no
`@exit` came before --timeout (the log is kept and collected all the same,
so its "no @exit line" warning says where the run stopped).

What a serial line adds over a QEMU console is handled here: CR LF line
ends, bytes that are not UTF-8 (noise while the adapter or board powers up)
and anything before the banner are kept in the log as read; the collector
reads only `@` lines.
"""

import argparse
import os
import select
import subprocess
import sys
import termios
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
PROG = "capture"
BAUDS = {9600: termios.B9600, 38400: termios.B38400, 57600: termios.B57600, 115200: termios.B115200}


def say(message):
    print(f"{PROG}: {message}", file=sys.stderr)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="capture.py", description=__doc__.split("\n\n")[0])
    p.add_argument("port", help="serial device, e.g. /dev/ttyUSB0 (any readable file or pty works)")
    p.add_argument("--baud", type=int, default=115200, choices=sorted(BAUDS), help="default 115200")
    p.add_argument("--out", default=os.path.join(REPO_ROOT, "build/results/rpi4/board"),
                   help="folder for demo.log and the collector's output (default build/results/rpi4/board)")
    p.add_argument("--timeout", type=float, default=4 * 3600,
                   help="give up after SECS without @exit (default 4 hours; a full demo takes about one)")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("--no-collect", action="store_true", help="only save the log")
    return p.parse_args(argv)


def set_raw(fd, baud):
    """8N1, raw, no flow control, at `baud` (left alone if `fd` is no tty)."""
    if not os.isatty(fd):
        return
    attrs = termios.tcgetattr(fd)
    iflag, oflag, cflag, lflag, _, _, cc = attrs
    iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
               | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON | termios.IXOFF)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | getattr(termios, "CRTSCTS", 0))
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    speed = BAUDS[baud]
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


def is_exit(line):
    # Noise can precede a line; the kernel's @exit is the last thing it prints.
    return line.lstrip("\x00\ufffd \t").startswith("@exit ")


def capture(fd, log, timeout, echo):
    """Reads lines from `fd` into `log` until @exit; True if it came."""
    deadline = time.monotonic() + timeout
    pending = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # a pty whose writer closed, a USB adapter unplugged
            chunk = b""
        if not chunk:
            if pending:
                log.write(pending.decode("utf-8", "replace").rstrip("\r") + "\n")
            return False
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            log.write(line + "\n")
            if echo:
                print(line, flush=True)
            if is_exit(line):
                return True


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "demo.log")
    try:
        fd = os.open(args.port, os.O_RDONLY | os.O_NOCTTY)
    except OSError as e:
        say(f"cannot open {args.port}: {e.strerror} (the adapter's device, e.g. /dev/ttyUSB0; "
            "permission: the dialout group)")
        return 2
    try:
        set_raw(fd, args.baud)
        say(f"reading {args.port} at {args.baud} 8N1 into {path} until @exit; power or reset the board now")
        with open(path, "w", encoding="utf-8") as log:
            done = capture(fd, log, args.timeout, not args.quiet)
    except KeyboardInterrupt:
        done = False
        say("interrupted")
    finally:
        os.close(fd)
    if not done:
        say(f"no @exit line from {args.port}; the log so far is in {path}")
    if args.no_collect:
        return 0 if done else 1
    cmd = [sys.executable, os.path.join(HERE, "collect.py"), path, "--board", "rpi4", "--accel", "hw",
           "--out", args.out]
    rc = subprocess.call(cmd)
    return rc if done else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
