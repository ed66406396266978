"""The pre-`up` port check: a listener is a clash; a killed run's closed connections are not."""

from __future__ import annotations

import socket

from harness.serving.compose import port_is_free


def test_a_listening_port_is_not_free():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert not port_is_free("127.0.0.1", listener.getsockname()[1])


def test_connections_left_in_time_wait_do_not_block_the_port():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as docker-proxy's (Go) listeners do
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end of the connection sits in TIME_WAIT on `port`
    client.recv(1)
    client.close()
    listener.close()
    assert port_is_free("127.0.0.1", port)
