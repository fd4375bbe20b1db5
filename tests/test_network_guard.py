"""The test suite itself must not reach the network: pytest-socket (configured in pytest.ini)
refuses any connection that is not to loopback, and lets loopback through (local servers, the
kernels of nbval)."""

import socket
import warnings

import pytest
from pytest_socket import SocketConnectBlockedError


def test_the_guard_is_configured(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("socket")
    assert pytestconfig.getoption("--disable-socket")
    allowed = set(pytestconfig.getoption("--allow-hosts").split(","))
    assert allowed == {"127.0.0.1", "::1", "localhost"}


@pytest.mark.parametrize("address", [("93.184.216.34", 80), ("10.0.0.1", 443), ("8.8.8.8", 53)])
def test_outgoing_connection_is_refused(address):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pytest-socket also warns; the error is what matters
            with pytest.raises(SocketConnectBlockedError, match=rf'host "{address[0]}"'):
                s.connect(address)
    finally:
        s.close()


def test_http_request_is_refused():
    """What a library that downloads would do (urllib -> socket.create_connection -> connect)."""
    import urllib.request

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SocketConnectBlockedError):
            urllib.request.urlopen("http://93.184.216.34/", timeout=2)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_allowed(host):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect((host, server.getsockname()[1]))
        conn, _ = server.accept()
        client.sendall(b"ok")
        assert conn.recv(2) == b"ok"
        conn.close()
    finally:
        client.close()
        server.close()


def test_unix_sockets_are_allowed():
    a, b = socket.socketpair()
    try:
        a.sendall(b"x")
        assert b.recv(1) == b"x"
    finally:
        a.close()
        b.close()
