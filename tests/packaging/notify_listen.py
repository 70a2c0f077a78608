"""A NOTIFY_SOCKET of the package check's own: prints each datagram that arrives, one a line."""
import os
import socket
import sys
import time

path = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.exists(path):
    os.unlink(path)
sock.bind(path)
os.chmod(path, 0o666)
start = time.monotonic()
while True:
    data = sock.recv(65536).decode(errors="replace")
    for line in data.splitlines():
        print(f"{time.monotonic() - start:.3f} {line}", flush=True)
