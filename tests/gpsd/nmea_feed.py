#!/usr/bin/env python3
"""Feed NMEA 0183 sentences stamped with the current UTC time into a FIFO.

Usage:
    nmea_feed.py FIFO SECONDS [--sentences RMC,GGA] [--offset-ms MS]
                              [--settle S] [--wait-reader S] [--quiet]

Once a second, at the top of the UTC second, the script writes the selected
sentences naming that second (fractional part .00) to FIFO, all in one
write(2) (about 140 bytes, far below PIPE_BUF, so the write is atomic). It
does that for SECONDS seconds, then exits: one write per second, except that
after a stall of more than half a second it skips the missed seconds rather
than write them late. The position is fixed: 50d05.1230'N
14d25.4560'E (Prague), 250 m above mean sea level, 8 satellites, 3D fix.

gpsd 3.22 needs only $GPRMC with status A to write NTP SHM samples; the
default RMC,GGA looks like a real receiver. $GPGGA alone never gives time
(no date), and $GPZDA alone gives time only when gpsd runs with -r.

--offset-ms MS makes the NMEA time MS milliseconds ahead of the system clock:
the sentence naming second S is written at system time S - MS/1000. So a
negative MS writes late (e.g. -30: 30 ms after the second began), and a
positive one writes early. The default 0 writes at the top of the second.

The FIFO is created (mode 0600) if it does not exist. gpsd refuses a device
that another process already holds open when gpsd opens it, and it spends
about 0.8 s probing a new device; so the script does not open the FIFO until
it sees, in /proc, another process holding the FIFO for reading (gpsd), and
then waits --settle seconds more (default 1.5). A reader that blocks in
open(2), like `cat FIFO`, holds no descriptor yet; it is recognised by its
wait channel and gets the FIFO at once. Without permission to look
at other processes' descriptors (not root), it falls back to polling
open(O_WRONLY|O_NONBLOCK), which can race with gpsd's check. It gives up
with status 1 if no reader shows up within --wait-reader seconds (default
30). If the reader goes away (EPIPE), or on SIGTERM or SIGINT, it stops and
exits with status 0.

Unless --quiet, it logs on stderr, for each write, the second it named and
how many ms after the scheduled moment write(2) returned.

Python 3 standard library only.
"""

import argparse
import errno
import math
import os
import signal
import stat
import sys
import time

# Fixed position, in NMEA's degrees-and-minutes form.
LAT = "5005.1230"
LAT_HEMI = "N"
LON = "01425.4560"
LON_HEMI = "E"
ALT_MSL_M = "250.0"
GEOID_SEPARATION_M = "45.0"
SATELLITES_USED = ["03", "06", "09", "12", "17", "19", "22", "25"]

KNOWN_SENTENCES = ("RMC", "GGA", "GSA", "ZDA")
DEFAULT_SENTENCES = ("RMC", "GGA")


class Stop(Exception):
    """Raised by the SIGTERM handler to end the feeding loop."""


def nmea_checksum(body):
    """XOR of every byte between '$' and '*'."""
    value = 0
    for byte in body.encode("ascii"):
        value ^= byte
    return value


def nmea_sentence(body):
    return "$%s*%02X\r\n" % (body, nmea_checksum(body))


def build_sentence(tag, utc):
    """One sentence of type TAG for the UTC struct_time UTC."""
    hhmmss = "%02d%02d%02d.00" % (utc.tm_hour, utc.tm_min, utc.tm_sec)
    if tag == "RMC":
        # status A = valid; speed 0 kn; course 0; date ddmmyy; no magnetic
        # variation; NMEA 2.3 mode indicator A = autonomous.
        ddmmyy = "%02d%02d%02d" % (utc.tm_mday, utc.tm_mon, utc.tm_year % 100)
        body = "GPRMC,%s,A,%s,%s,%s,%s,0.00,0.00,%s,,,A" % (
            hhmmss, LAT, LAT_HEMI, LON, LON_HEMI, ddmmyy)
    elif tag == "GGA":
        # quality 1 = GPS fix; satellites used; HDOP; altitude; geoid height.
        body = "GPGGA,%s,%s,%s,%s,%s,1,%02d,0.9,%s,M,%s,M,," % (
            hhmmss, LAT, LAT_HEMI, LON, LON_HEMI, len(SATELLITES_USED),
            ALT_MSL_M, GEOID_SEPARATION_M)
    elif tag == "GSA":
        # automatic 2D/3D; 3 = 3D fix; twelve PRN fields; PDOP, HDOP, VDOP.
        prns = (SATELLITES_USED + [""] * 12)[:12]
        body = "GPGSA,A,3,%s,1.6,0.9,1.3" % ",".join(prns)
    elif tag == "ZDA":
        # time; day; month; four-digit year; local zone hours and minutes.
        body = "GPZDA,%s,%02d,%02d,%04d,00,00" % (
            hhmmss, utc.tm_mday, utc.tm_mon, utc.tm_year)
    else:
        raise ValueError("unknown sentence type %r" % tag)
    return nmea_sentence(body)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Write NMEA sentences with the current UTC time into a "
                    "FIFO once a second (see the module docstring).")
    parser.add_argument("fifo", help="FIFO path (created if missing)")
    parser.add_argument("seconds", type=int,
                        help="how many seconds to feed (one write per second)")
    parser.add_argument("--sentences", default=",".join(DEFAULT_SENTENCES),
                        help="comma-separated, in write order, out of "
                             + ",".join(KNOWN_SENTENCES)
                             + " (default: %(default)s)")
    parser.add_argument("--offset-ms", type=float, default=0.0,
                        help="NMEA time minus system time, in ms; negative "
                             "writes late (default: %(default)s)")
    parser.add_argument("--settle", type=float, default=1.5,
                        help="seconds to wait after a reader has opened the "
                             "FIFO before opening it for writing "
                             "(default: %(default)s)")
    parser.add_argument("--wait-reader", type=float, default=30.0,
                        help="give up if no reader has opened the FIFO after "
                             "this many seconds (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not log each write on stderr")
    args = parser.parse_args(argv)
    args.tags = [t.strip().upper() for t in args.sentences.split(",")
                 if t.strip()]
    if not args.tags:
        parser.error("--sentences is empty")
    for tag in args.tags:
        if tag not in KNOWN_SENTENCES:
            parser.error("unknown sentence type %r" % tag)
    if args.seconds < 1:
        parser.error("SECONDS must be at least 1")
    if args.settle < 0 or args.wait_reader < 0:
        parser.error("--settle and --wait-reader must not be negative")
    return args


def log(args, message):
    if not args.quiet:
        print("nmea_feed: " + message, file=sys.stderr, flush=True)


def ensure_fifo(path):
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        os.mkfifo(path, 0o600)
        return
    if not stat.S_ISFIFO(mode):
        raise SystemExit("nmea_feed: %s exists and is not a FIFO" % path)


def fifo_readers(path):
    """PIDs of other processes holding PATH open for reading.

    Returns None when /proc cannot tell because some processes' descriptor
    tables are hidden from us and none of the visible ones holds the FIFO.
    """
    target = os.path.realpath(path)
    me = os.getpid()
    readers = []
    hidden = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            fds = os.listdir(fd_dir)
        except PermissionError:
            hidden += 1
            continue
        except OSError:  # the process exited meanwhile
            continue
        for fd in fds:
            try:
                if os.readlink("%s/%s" % (fd_dir, fd)) != target:
                    continue
                with open("/proc/%s/fdinfo/%s" % (entry, fd)) as info:
                    flags = next(int(line.split()[1], 8) for line in info
                                 if line.startswith("flags:"))
            except (OSError, StopIteration, ValueError, IndexError):
                continue
            if flags & os.O_ACCMODE != os.O_WRONLY:
                readers.append(int(entry))
                break
    if not readers and hidden:
        return None
    return readers


def someone_blocked_opening_a_fifo():
    """True if some process sleeps in the kernel's FIFO open (wchan
    wait_for_partner), e.g. `cat FIFO` waiting for a writer. Such a blocking
    reader holds no descriptor yet, so fifo_readers() cannot see it; gpsd
    opens non-blocking and never sleeps there."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/wchan" % entry) as wchan:
                if wchan.read().strip() == "wait_for_partner":
                    return True
        except OSError:
            continue
    return False


def try_open(path):
    """Non-blocking open for writing; None while the FIFO has no reader."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return None
        raise
    os.set_blocking(fd, True)
    return fd


def open_writer(args):
    """Open the FIFO once a reader has it (see the module docstring)."""
    deadline = time.monotonic() + args.wait_reader
    use_proc = True
    while True:
        if use_proc:
            readers = fifo_readers(args.fifo)
            if readers is None:
                use_proc = False
                log(args, "cannot see other processes' descriptors; "
                          "polling open() instead")
                continue
            if readers:
                log(args, "reader pid(s) %s; opening in %.1f s"
                    % (",".join(map(str, readers)), args.settle))
                time.sleep(args.settle)
                fd = try_open(args.fifo)
                if fd is not None:
                    return fd
            elif someone_blocked_opening_a_fifo():
                fd = try_open(args.fifo)  # ENXIO unless the sleeper is ours
                if fd is not None:
                    log(args, "a blocking reader opened the FIFO")
                    return fd
        else:
            fd = try_open(args.fifo)
            if fd is not None:
                time.sleep(args.settle)
                return fd
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def sleep_until(wall_time):
    """Sleep until time.time() >= wall_time."""
    while True:
        remaining = wall_time - time.time()
        if remaining <= 0:
            return
        # Aim 2 ms early, then finish with short sleeps.
        time.sleep(remaining - 0.002 if remaining > 0.004 else remaining)


def feed(args, fd):
    """Write once per second for SECONDS seconds; return the writes done."""
    offset = args.offset_ms / 1000.0
    # The sentence naming second S goes out at system time S - offset, i.e.
    # at the phase (-offset mod 1) of each system second.
    phase = (-offset) % 1.0
    when = math.ceil(time.time() - phase) + phase
    end = when + args.seconds - 0.5
    written = 0
    while when < end:
        sleep_until(when)
        late = time.time() - when
        if late > 0.5:
            # Suspended or starved: skip the slots already past rather than
            # write a stale time (skipped slots still count as seconds).
            when += math.ceil(late)
            continue
        utc = time.gmtime(round(when + offset))
        data = "".join(build_sentence(tag, utc) for tag in args.tags)
        os.write(fd, data.encode("ascii"))
        written += 1
        log(args, "%s written %.3f ms after its scheduled time"
            % (time.strftime("%Y-%m-%dT%H:%M:%SZ", utc),
               (time.time() - when) * 1000.0))
        when += 1.0
    return written


def main(argv):
    args = parse_args(argv)

    def on_sigterm(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_sigterm)
    fd = None
    try:
        ensure_fifo(args.fifo)
        fd = open_writer(args)
        if fd is None:
            print("nmea_feed: no reader opened %s within %.1f s"
                  % (args.fifo, args.wait_reader), file=sys.stderr)
            return 1
        written = feed(args, fd)
        log(args, "done after %d writes" % written)
    except BrokenPipeError:
        log(args, "the reader went away; stopping")
    except (Stop, KeyboardInterrupt):
        log(args, "stopped by signal")
    finally:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
