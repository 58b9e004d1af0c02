"""The private network the two-worker tests and the slow-link benchmark
talk in where there is no root (`benchmarks/network_namespace.py`): a
user namespace with a loopback of its own, shaped by `tc`, unreachable
from the machine's own loopback, whose traffic its own byte counter
counts, and gone with its `with` block. (The named namespace of root:
test_slow_link.py.)"""

import os
import re
import socket
import subprocess
import sys

import pytest

from benchmarks import network_namespace
from tests.helpers import ROOT
from tests.helpers import namespace_of
from tests.helpers import needs_namespaces

# Run inside: whether connecting to the port (listened on outside) is
# refused, and whether the port is free to bind there.
PROBE = """
import socket, sys
port = int(sys.argv[1])
refused = socket.socket().connect_ex(("127.0.0.1", port)) != 0
socket.socket().bind(("127.0.0.1", port))
print(refused, "bound")
"""


# Run inside: the loopback's byte counter before and after 1 MB crosses
# it.
COUNT = """
import socket
from benchmarks.network_namespace import loopback_bytes
before = loopback_bytes()
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
peer, _ = server.accept()
client.sendall(bytes(1_000_000))
received = 0
while received < 1_000_000:
    received += len(peer.recv(1 << 20))
print(before, loopback_bytes())
"""


def inside(namespace, argv):
    return subprocess.run(namespace.command(argv), capture_output=True,
                          text=True, check=True, cwd=ROOT).stdout


@needs_namespaces("user")
def test_user_namespace_is_private_shaped_and_gone_after():
    outside = socket.socket()
    outside.bind(("127.0.0.1", 0))
    outside.listen()
    port = outside.getsockname()[1]
    namespace = network_namespace.UserNamespace()
    try:
        with namespace:
            assert namespace.exists()
            namespace.limit(1e9)
            shown = inside(namespace, ["tc", "qdisc", "show", "dev", "lo"])
            assert "tbf" in shown and "rate 1Gbit" in shown
            addresses = inside(namespace, ["ip", "-o", "addr"])
            assert set(re.findall(r"inet6? (\S+)", addresses)) <= {
                "127.0.0.1/8", "::1/128"}
            # The machine's listener is not there, and its port is free.
            assert inside(namespace, [sys.executable, "-c", PROBE,
                                      str(port)]).split() == ["True",
                                                              "bound"]
            namespace.limit(None)
            assert "tbf" not in inside(namespace, ["tc", "qdisc", "show",
                                                   "dev", "lo"])
            holder = namespace.command([])[-1]
        assert not namespace.exists()
        with pytest.raises(ProcessLookupError):
            os.kill(int(holder), 0)
    finally:
        outside.close()


@pytest.mark.parametrize("kind", [
    pytest.param("root", marks=needs_namespaces("root")),
    pytest.param("user", marks=needs_namespaces("user"))])
def test_loopback_bytes_counts_the_namespace_own_traffic(kind):
    """What the slow-link workers read: the loopback of their own
    namespace, for both kinds (with `nsenter`, /sys is still the host's,
    whose counter this traffic never reaches)."""
    with namespace_of(kind, f"ks-test-count-{os.getpid()}") as namespace:
        before, after = map(int, inside(namespace, [
            sys.executable, "-c", COUNT]).split())
    # The payload and its TCP headers, counted once (sent; the loopback
    # receives the same packets).
    assert 1_000_000 <= after - before < 1_100_000


def test_private_falls_back_to_a_user_namespace_without_root(monkeypatch):
    def no_root():
        raise network_namespace.Unavailable("network namespaces need root")

    monkeypatch.setattr(network_namespace, "check", no_root)
    assert isinstance(network_namespace.private("ks-x"),
                      network_namespace.UserNamespace)
    monkeypatch.setattr(network_namespace, "check", lambda: None)
    made = network_namespace.private("ks-x")
    assert isinstance(made, network_namespace.Namespace)
    assert made.name == "ks-x"
