"""The test suite itself must not reach the network: the guard in conftest refuses it."""

import socket

import pytest


def test_outgoing_connection_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(RuntimeError, match="tried to connect"):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()


def test_name_resolution_is_refused():
    with pytest.raises(RuntimeError, match="tried to resolve"):
        socket.getaddrinfo("huggingface.co", 443)


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
    finally:
        client.close()
        server.close()
