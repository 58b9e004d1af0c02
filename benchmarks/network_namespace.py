"""A private network namespace whose loopback is rate-limited with `tc`.

Every test and benchmark whose processes talk over a network (the
slow-link benchmark's workers, the two-worker tests) does so on
127.0.0.1 inside a namespace this module creates, whose loopback carries
a token-bucket filter (`tc ... tbf`): every byte the workers exchange
crosses that one limit, so W workers share one link of the given rate
(their aggregate traffic is limited, not each worker's). Traffic never
leaves the namespace.

`Namespace` (root): a named namespace (`ip netns add`), removed when the
`with` block ends, on an error, on Ctrl-C and on SIGTERM.
`UserNamespace` (no root needed where the kernel allows unprivileged user
namespaces): one held by a process of its own, gone with it.
`private()` gives the first of these that this machine allows.
`loopback_bytes()`, called inside either, counts what its loopback sent.
"""

import os
import shutil
import signal
import subprocess

UNITS = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
# The filter's queue, as time at the limited rate.
LATENCY = "200ms"


class Unavailable(RuntimeError):
    """Namespaces or `tc` cannot be used here (the message says why)."""


def parse_rate(text):
    """Bits per second of "100mbit", "1gbit", "10gbit"; None for "none"
    (no limit)."""
    text = text.strip().lower()
    if text == "none":
        return None
    for unit, scale in UNITS.items():
        if text.endswith(unit):
            try:
                value = float(text[:-len(unit)])
            except ValueError:
                break
            if value > 0:
                return value * scale
    raise ValueError(f"a rate is 'none' or a number with kbit, mbit or "
                     f"gbit, e.g. 1gbit; got {text!r}")


def rate_name(bits):
    if bits is None:
        return "no limit"
    for unit, scale in reversed(list(UNITS.items())):
        if bits >= scale:
            return f"{bits / scale:g} {unit[0].upper()}{unit[1:]}/s"
    return f"{bits:g} bit/s"


def check():
    """Raises `Unavailable` unless this process can make namespaces and
    shape their traffic."""
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root (run as root, or "
                          "skip this benchmark)")
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"`{' and '.join(missing)}` not found: install "
                          "iproute2")


def _run(argv):
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"`{' '.join(argv)}` failed: "
                          f"{result.stderr.strip() or result.returncode}")
    return result.stdout


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so `with` blocks unwind."""


def terminate(signum, frame):
    raise Terminated()


class _Shaped:
    """What both kinds share: `limit` runs `tc` inside, through the
    kind's own `command`."""

    def limit(self, bits):
        """Limits the loopback to `bits` per second (None: no limit)."""
        if bits is None:
            subprocess.run(self.command(["tc", "qdisc", "del", "dev", "lo",
                                         "root"]), capture_output=True)
            return
        # The bucket must hold at least one 64 KiB loopback packet and
        # what the rate delivers in a timer tick (4 ms).
        burst = max(1 << 20, int(bits / 8 * 0.004))
        _run(self.command(["tc", "qdisc", "replace", "dev", "lo", "root",
                           "tbf", "rate", f"{int(bits)}bit", "burst",
                           str(burst), "latency", LATENCY]))


class Namespace(_Shaped):
    """`with Namespace() as ns:` a fresh namespace with its loopback up;
    `ns.limit(rate)` shapes it; `ns.command(argv)` runs argv inside."""

    def __init__(self, name=None):
        self.name = name or f"ks-slow-link-{os.getpid()}"
        self._previous_handler = None

    def __enter__(self):
        check()
        self._previous_handler = signal.signal(signal.SIGTERM, terminate)
        try:
            _run(["ip", "netns", "add", self.name])
            _run(["ip", "-n", self.name, "link", "set", "lo", "up"])
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind, value, traceback):
        self.remove()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
        return False

    def remove(self):
        subprocess.run(["ip", "netns", "del", self.name],
                       capture_output=True)

    def exists(self):
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout
        return any(line.split()[0] == self.name
                   for line in listed.splitlines() if line.strip())

    def command(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]


class UserNamespace(_Shaped):
    """`with UserNamespace() as ns:` the same without root: a user
    namespace with a network namespace of its own (`unshare --user
    --map-root-user --net`), held by one process; `ns.command(argv)`
    enters both with `nsenter`. It has no name and nothing to remove: it
    is gone once its holder has exited and so has every process started
    in it. Inside it `/sys` is still the host's: read the loopback's
    byte counter with `loopback_bytes()`."""

    def __init__(self):
        self._holder = None

    def __enter__(self):
        tools = ("unshare", "nsenter", "ip", "tc")
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            raise Unavailable(f"`{' and '.join(missing)}` not found: install "
                              "util-linux and iproute2")
        # The holder waits for its standard input to close: if this
        # process dies without closing it, the holder still ends.
        self._holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", "sh", "-c",
             "ip link set lo up && echo up && exec cat"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        if self._holder.stdout.readline().strip() != "up":
            _, error = self._holder.communicate()
            self._holder = None
            raise Unavailable(f"no user namespace could be made here: "
                              f"{error.strip() or 'unshare failed'}")
        return self

    def __exit__(self, kind, value, traceback):
        self.remove()
        return False

    def remove(self):
        if self._holder is None:
            return
        self._holder.stdin.close()
        try:
            self._holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._holder.kill()
            self._holder.wait()
        self._holder.stdout.close()
        self._holder.stderr.close()
        self._holder = None

    def exists(self):
        return self._holder is not None and self._holder.poll() is None

    def command(self, argv):
        return ["nsenter", "--preserve-credentials", "--user", "--net",
                "-t", str(self._holder.pid), *argv]


def private(name):
    """A namespace to enter with `with`: `Namespace(name)` as root, else a
    `UserNamespace`. Entering raises `Unavailable` where neither can be
    made."""
    try:
        check()
    except Unavailable:
        return UserNamespace()
    return Namespace(name)


def loopback_bytes():
    """Bytes the loopback of the caller's network namespace has sent, or
    None where that cannot be read.

    Read from /proc/net/dev, which every process sees for its own
    namespace; the counters under /sys/class/net are those of the
    namespace /sys was mounted in (`ip netns exec` mounts a fresh one,
    `nsenter` does not)."""
    try:
        with open("/proc/net/dev", encoding="ascii") as f:
            for line in f:
                name, _, counters = line.partition(":")
                if name.strip() == "lo" and counters:
                    # Eight receive counters, then the bytes sent.
                    return int(counters.split()[8])
    except (OSError, ValueError, IndexError):
        pass
    return None
