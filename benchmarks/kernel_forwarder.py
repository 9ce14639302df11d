"""A TCP forwarder whose bytes never reach user space: an eBPF sockmap, as a second ceiling.

Usage: ``python benchmarks/kernel_forwarder.py UPSTREAM_PORT`` prints the port it
listens on (loopback), then forwards every connection to ``127.0.0.1:UPSTREAM_PORT``
until killed. Exits 3, with one line on stderr, where the kernel refuses (not Linux, no
``CAP_BPF``/``CAP_NET_ADMIN``, a kernel older than 5.13, an unknown architecture).

Why it exists: `splice_forwarder.py` is the fastest forwarder user space can be, and
the chaos proxy's raw bytes sit at its level. What is left is the kernel's own work for
the extra hop: two more TCP sockets per direction. This forwarder removes even the
splice calls: the kernel hands each segment arriving on one socket of a pair straight
to the other socket's send path, with no wake-up of this process at all (an
``SK_SKB`` verdict program calling ``bpf_sk_redirect_hash``, the mechanism some
service meshes use for loopback traffic). Where it measures no better than the splice
forwarder, no proxy design can do better on the machine. On the 2-core VM of issue 16
it measured below it in each of four full runs (docs/chaos.md, Performance).

The program is 14 instructions, assembled here and loaded with the ``bpf(2)`` system
call through ctypes (no compiler, no libbpf). Its map is a sockhash keyed by the
receiving socket's ports, holding the socket to send on.

Not part of the package: benchmark only, root only, no toxics, killed by the benchmark
that starts it.
"""

from __future__ import annotations

import ctypes
import os
import platform
import select
import socket
import struct
import sys
import threading

HOST = "127.0.0.1"
#: bpf(2)'s number per architecture (x86_64's own table; the generic one elsewhere).
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280}
_MAP_CREATE, _MAP_UPDATE_ELEM, _MAP_DELETE_ELEM, _PROG_LOAD, _PROG_ATTACH = 0, 2, 3, 5, 8
_MAP_TYPE_SOCKHASH = 18
_PROG_TYPE_SK_SKB = 14
_ATTACH_SK_SKB_VERDICT = 38  # verdict without a stream parser (Linux 5.13+)
_HELPER_SK_REDIRECT_HASH = 72
#: ``struct __sk_buff``: remote_port (network order; shifted left 16 on little-endian
#: hosts, as the kernel loads it) and local_port (host order).
_REMOTE_PORT, _LOCAL_PORT = 132, 136
_MAX_PAIRS = 4096


class KernelRefused(OSError):
    """The kernel would not create the map, load the program or attach it."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(command: int, attr: bytes) -> int:
    number = _SYS_BPF.get(platform.machine())
    if sys.platform != "linux" or number is None:
        raise KernelRefused(f"no bpf(2) here ({sys.platform}, {platform.machine()})")
    buffer = ctypes.create_string_buffer(attr, len(attr))
    result = _libc.syscall(number, command, buffer, len(attr))
    if result < 0:
        errno = ctypes.get_errno()
        raise KernelRefused(errno, f"bpf command {command}: {os.strerror(errno)}")
    return int(result)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _verdict_program(map_fd: int) -> bytes:
    """redirect(skb, map, key = local_port << 32 | remote_port) to the peer's egress."""
    return b"".join(
        [
            _insn(0xBF, 6, 1),  # r6 = r1 (the skb)
            _insn(0x61, 2, 6, _REMOTE_PORT),  # r2 = skb->remote_port
            _insn(0x61, 3, 6, _LOCAL_PORT),  # r3 = skb->local_port
            _insn(0x67, 3, imm=32),  # r3 <<= 32
            _insn(0x4F, 3, 2),  # r3 |= r2
            _insn(0x7B, 10, 3, -8),  # *(u64 *)(r10 - 8) = r3: the key, on the stack
            _insn(0x18, 2, 1, imm=map_fd),  # r2 = the map (a 64-bit load: two slots)
            _insn(0x00),
            _insn(0xBF, 3, 10),  # r3 = r10
            _insn(0x07, 3, imm=-8),  # r3 -= 8: the key's address
            _insn(0xB7, 4, imm=0),  # r4 = 0: the peer's send path, not its receive queue
            _insn(0xBF, 1, 6),  # r1 = the skb
            _insn(0x85, imm=_HELPER_SK_REDIRECT_HASH),  # r0 = SK_PASS, or SK_DROP
            _insn(0x95),  # return r0
        ]
    )


def _key(sock: socket.socket) -> bytes:
    """The key the program computes for a segment arriving on ``sock``."""
    remote = socket.htons(sock.getpeername()[1])
    if sys.byteorder == "little":
        remote <<= 16
    return struct.pack("<Q", sock.getsockname()[1] << 32 | remote)


class Sockhash:
    """The map and its attached verdict program: a pair in it forwards in kernel."""

    def __init__(self) -> None:
        self.fd = _bpf(
            _MAP_CREATE, struct.pack("<IIII", _MAP_TYPE_SOCKHASH, 8, 4, _MAX_PAIRS) + bytes(112)
        )
        program = _verdict_program(self.fd)
        code = ctypes.create_string_buffer(program, len(program))
        license_ = ctypes.create_string_buffer(b"MIT")
        log = ctypes.create_string_buffer(16384)
        attr = struct.pack(
            "<IIQQIIQII16sII",
            _PROG_TYPE_SK_SKB,
            len(program) // 8,
            ctypes.addressof(code),
            ctypes.addressof(license_),
            1,
            len(log),
            ctypes.addressof(log),
            0,
            0,
            b"ws_bench_fwd",
            0,
            0,
        )
        try:
            program_fd = _bpf(_PROG_LOAD, attr + bytes(32))
        except KernelRefused as refused:
            verifier = log.value.decode(errors="replace").strip().splitlines()[-1:]
            raise KernelRefused(f"{refused} {verifier}") from None
        _bpf(_PROG_ATTACH, struct.pack("<IIIII", self.fd, program_fd, _ATTACH_SK_SKB_VERDICT, 0, 0))

    def _call(self, command: int, key: bytes, fd: int | None) -> None:
        key_buffer = ctypes.create_string_buffer(key, 8)
        value = ctypes.create_string_buffer(struct.pack("<I", fd or 0), 4)
        value_address = 0 if fd is None else ctypes.addressof(value)
        attr = struct.pack("<IIQQQ", self.fd, 0, ctypes.addressof(key_buffer), value_address, 0)
        _bpf(command, attr)

    def pair(self, a: socket.socket, b: socket.socket) -> list[bytes]:
        """From now on, what arrives on ``a`` leaves by ``b``, and the other way round."""
        keys = [_key(a), _key(b)]
        try:
            self._call(_MAP_UPDATE_ELEM, keys[0], b.fileno())
            self._call(_MAP_UPDATE_ELEM, keys[1], a.fileno())
            for sock in (a, b):
                # Bytes that arrived before the pairing wait in the receive queue until
                # the next segment. A non-blocking read hands them to the program (seen:
                # it fails, and they go out by the peer, in order).
                try:
                    early = sock.recv(65536, socket.MSG_DONTWAIT)
                except OSError:
                    continue  # EAGAIN, or (seen on a socket with nothing queued) EPIPE
                if early:
                    raise RuntimeError(f"{len(early)} bytes came up to user space")
        except BaseException:
            self.unpair(keys)
            raise
        return keys

    def unpair(self, keys: list[bytes]) -> None:
        for key in keys:
            try:
                self._call(_MAP_DELETE_ELEM, key, None)
            except KernelRefused:
                pass  # closing a socket already took it out of the map


def _serve(sockhash: Sockhash, client: socket.socket, upstream: int) -> None:
    """Pair the two sockets; wait only for FIN or an error, and pass it on as a half-close."""
    poller = select.epoll()
    server: socket.socket | None = None
    keys: list[bytes] = []
    try:
        server = socket.create_connection((HOST, upstream), timeout=10)
        keys = sockhash.pair(client, server)
        peers = {client.fileno(): server, server.fileno(): client}
        for fd in peers:  # no EPOLLIN: the bytes never come up
            poller.register(fd, select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR)
        while peers:
            for fd, _ in poller.poll():
                poller.unregister(fd)
                try:
                    peers.pop(fd).shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the peer is gone already
    finally:  # a failure closes both: the client sees its connection end, not a hang
        sockhash.unpair(keys)
        poller.close()
        client.close()
        if server is not None:
            server.close()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: kernel_forwarder.py UPSTREAM_PORT", file=sys.stderr)
        return 2
    try:
        sockhash = Sockhash()
    except KernelRefused as refused:
        print(f"kernel_forwarder: the kernel refused the sockmap: {refused}", file=sys.stderr)
        return 3
    listener = socket.create_server((HOST, 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(sockhash, client, int(argv[0])), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
