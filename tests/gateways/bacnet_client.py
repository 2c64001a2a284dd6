"""A BACnet/IP client in its own process (bacpypes3), driven by the BACnet tests.

    python bacnet_client.py SERVER_HOST:PORT
Reads one JSON command per line on stdin, answers one JSON line on stdout. The first line
out is {"ready": true}. Errors of the server come back as {"error": {...}} (bacpypes3 raises
ErrorRejectAbortNack, a BaseException, for an Error, Reject or Abort).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import time
from typing import Any

from bacpypes3.apdu import (
    AbortPDU,
    AtomicReadFileRequest,
    DeviceCommunicationControlRequest,
    ErrorPDU,
    ErrorRejectAbortNack,
    ReinitializeDeviceRequest,
    RejectPDU,
    WritePropertyMultipleError,
)
from bacpypes3.app import Application
from bacpypes3.basetypes import (
    AtomicReadFileRequestAccessMethodChoice,
    AtomicReadFileRequestAccessMethodChoiceStreamAccess,
    ErrorType,
)
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def describe(err: BaseException) -> dict[str, Any]:
    if isinstance(err, WritePropertyMultipleError):
        e = err.errorType
        return {"kind": "wpm-error", "class": str(e.errorClass), "code": str(e.errorCode)}
    if isinstance(err, ErrorPDU):
        return {"kind": "error", "class": str(err.errorClass), "code": str(err.errorCode)}
    if isinstance(err, RejectPDU):
        return {"kind": "reject", "reason": str(err.apduAbortRejectReason)}
    if isinstance(err, AbortPDU):
        return {"kind": "abort", "reason": str(err.apduAbortRejectReason)}
    return {"kind": type(err).__name__, "text": str(err)}


def plain(value: Any) -> Any:
    """A bacpypes3 value as JSON."""
    if isinstance(value, ErrorType):
        return {"error": {"class": str(value.errorClass), "code": str(value.errorCode)}}
    if isinstance(value, ObjectIdentifier):
        return f"{value[0]},{value[1]}"
    if isinstance(value, bool):
        return value
    if isinstance(value, float | int) and not hasattr(value, "asn1"):
        return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int) and type(value).__name__ in ("Unsigned", "Integer"):
        return int(value)
    return str(value)


class Client:
    def __init__(self, server: str) -> None:
        self.server = Address(server)
        port = free_port()
        device = DeviceObject(
            objectIdentifier=("device", 999001),
            objectName="test-client",
            vendorIdentifier=999,
            maxApduLengthAccepted=1476,
            segmentationSupported="segmented-both",
            maxSegmentsAccepted=64,
        )
        netport = NetworkPortObject(
            f"127.0.0.1:{port}", objectIdentifier=("network-port", 1), objectName="np"
        )
        self.app = Application.from_object_list([device, netport])
        self.cov_values: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.cov_task: asyncio.Task[None] | None = None

    async def run(self, cmd: dict[str, Any]) -> Any:
        op = cmd["op"]
        app, addr = self.app, self.server
        if op == "who_is":
            low, high = cmd.get("low"), cmd.get("high")
            i_ams = await app.who_is(low, high, address=addr, timeout=cmd.get("timeout", 2))
            return [
                {
                    "device": plain(i.iAmDeviceIdentifier),
                    "max_apdu": int(i.maxAPDULengthAccepted),
                    "segmentation": str(i.segmentationSupported),
                    "vendor": int(i.vendorID),
                }
                for i in i_ams
            ]
        if op == "who_has":
            kwargs: dict[str, Any] = {"address": addr, "timeout": cmd.get("timeout", 1)}
            if "name" in cmd:
                kwargs["object_name"] = cmd["name"]
            else:
                kwargs["object_identifier"] = ObjectIdentifier(cmd["object"])
            found = await app.who_has(**kwargs)
            return [
                {
                    "device": plain(x.deviceIdentifier),
                    "object": plain(x.objectIdentifier),
                    "name": str(x.objectName),
                }
                for x in found
            ]
        if op == "read":
            value = await app.read_property(addr, cmd["object"], cmd["property"], cmd.get("index"))
            return plain(value)
        if op == "read_many":
            out = []
            for obj in cmd["objects"]:
                out.append([obj, plain(await app.read_property(addr, obj, cmd["property"]))])
            return out
        if op == "rpm":
            t0 = time.perf_counter()
            result = await app.read_property_multiple(addr, cmd["args"])
            elapsed = time.perf_counter() - t0
            rows = [[plain(r[0]), str(r[1]), r[2], plain(r[3])] for r in result]
            return {"rows": rows, "elapsed_s": elapsed}
        if op == "write":
            value: Any = Null(()) if cmd["value"] is None else cmd["value"]
            await app.write_property(
                addr, cmd["object"], cmd["property"], value, None, cmd.get("priority")
            )
            return "ok"
        if op == "dcc":
            await app.request(
                DeviceCommunicationControlRequest(
                    enableDisable=cmd.get("state", "disable"),
                    password=cmd.get("password"),
                    timeDuration=cmd.get("minutes"),
                    destination=addr,
                )
            )
            return "ok"
        if op == "reinit":
            await app.request(
                ReinitializeDeviceRequest(
                    reinitializedStateOfDevice="warmstart",
                    password=cmd.get("password"),
                    destination=addr,
                )
            )
            return "ok"
        if op == "unsupported":
            await app.request(
                AtomicReadFileRequest(
                    fileIdentifier=ObjectIdentifier("file,1"),
                    accessMethod=AtomicReadFileRequestAccessMethodChoice(
                        streamAccess=AtomicReadFileRequestAccessMethodChoiceStreamAccess(
                            fileStartPosition=0, requestedOctetCount=10
                        )
                    ),
                    destination=addr,
                )
            )
            return "ok"
        if op == "cov_start":
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.cov_task = asyncio.create_task(
                self._cov(
                    cmd["object"], cmd.get("confirmed", False), cmd.get("lifetime", 60), ready
                )
            )
            return await ready
        if op == "cov_get":
            try:
                return await asyncio.wait_for(self.cov_values.get(), cmd.get("timeout", 3))
            except TimeoutError:
                return None
        if op == "cov_stop":
            if self.cov_task is not None:
                self.cov_task.cancel()
                with contextlib.suppress(BaseException):
                    await self.cov_task
                self.cov_task = None
            return "ok"
        raise ValueError(f"unknown op {op}")

    async def _cov(
        self, obj: str, confirmed: bool, lifetime: int, ready: asyncio.Future[Any]
    ) -> None:
        try:
            async with self.app.change_of_value(
                self.server, ObjectIdentifier(obj), None, confirmed, lifetime
            ) as scm:
                ready.set_result("subscribed")
                while True:
                    pid, value = await scm.get_value()
                    await self.cov_values.put([str(pid), plain(value)])
        except ErrorRejectAbortNack as err:
            if not ready.done():
                ready.set_result({"error": describe(err)})


async def main() -> None:
    client = Client(sys.argv[1])
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            out: Any = {"result": await client.run(cmd)}
        except ErrorRejectAbortNack as err:  # a BaseException: `except Exception` misses it
            out = {"error": describe(err)}
        except Exception as err:
            out = {"exception": f"{type(err).__name__}: {err}"}
        print(json.dumps(out), flush=True)
    client.app.close()


if __name__ == "__main__":
    asyncio.run(main())
