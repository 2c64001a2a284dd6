"""The device's network addresses, for the diagnostics page (Linux; nothing elsewhere)."""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address
IF_INET6 = Path("/proc/net/if_inet6")


def _ipv4(sock: socket.socket, interface: str) -> str | None:
    request = struct.pack("256s", interface.encode()[:15])
    try:
        answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
    except OSError:  # no IPv4 address on this interface
        return None
    return socket.inet_ntoa(answer[20:24])


def _ipv6() -> list[tuple[str, str]]:
    try:
        lines = IF_INET6.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6:
            address = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            found.append((fields[5], str(address)))
    return found


def addresses() -> list[tuple[str, str]]:
    """(interface, address) of every configured address, loopback left out."""
    found: list[tuple[str, str]] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return found
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            ipv4 = _ipv4(sock, name)
            if ipv4 is not None:
                found.append((name, ipv4))
    found += _ipv6()
    return [(name, a) for name, a in found if not ipaddress.ip_address(a).is_loopback]
