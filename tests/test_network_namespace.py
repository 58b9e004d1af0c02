"""The private network the two-worker tests talk in where there is no
root (`benchmarks/network_namespace.py`): a user namespace with a
loopback of its own, shaped by `tc`, unreachable from the machine's own
loopback, and gone with its `with` block. (The named namespace of root:
test_slow_link.py.)"""

import os
import re
import socket
import subprocess
import sys

import pytest

from benchmarks import network_namespace
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


def inside(namespace, argv):
    return subprocess.run(namespace.command(argv), capture_output=True,
                          text=True, check=True).stdout


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
