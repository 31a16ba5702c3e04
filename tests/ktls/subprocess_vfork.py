#!/usr/bin/env python3
"""CPython's subprocess beside a kTLS socket whose TLS_TX_ZEROCOPY_RO the
program set itself (issue 31 #3).  CPython (3.10+) starts /bin/true from a
vfork child that runs close_range(3, ~0U) in the parent's memory.  Sends
FILE on the socket before and after, and prints the flag after each, read
back with getsockopt.  Knows nothing about zctls.

    subprocess_vfork.py FILE
"""
import os
import socket
import struct
import subprocess
import sys
import threading

SOL_TLS, TLS_TX, TCP_ULP, TLS_TX_ZEROCOPY_RO = 282, 1, 31, 3


def main():
    path = sys.argv[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()

    def drain():
        while server.recv(1 << 16):
            pass

    threading.Thread(target=drain, daemon=True).start()
    client.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
    # struct tls12_crypto_info_aes_gcm_128: TLS 1.3, AES-GCM-128.
    client.setsockopt(SOL_TLS, TLS_TX, struct.pack("<HH8s16s4s8s", 0x0304, 51, b"\1" * 8,
                                                   b"\2" * 16, b"\3" * 4, b"\0" * 8))
    client.setsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO, 1)

    def send():
        with open(path, "rb") as f:
            size, sent = os.fstat(f.fileno()).st_size, 0
            while sent < size:
                sent += os.sendfile(client.fileno(), f.fileno(), sent, size - sent)
        return client.getsockopt(SOL_TLS, TLS_TX_ZEROCOPY_RO)

    print("before flag=%d" % send())
    subprocess.run(["/bin/true"], check=True)
    print("after flag=%d" % send())


if __name__ == "__main__":
    main()
