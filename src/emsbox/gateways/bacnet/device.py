"""The BACnet device on its UDP socket: datagrams in, through the BVLC, NPDU and APDU layers,
to the service that answers them, and APDUs out.

Every datagram is handled as docs/bacnet.md says: a read answers from prepared data, measured
values are read-only on the wire, answers never exceed the client's APDU size, and nothing a
client sends can stop the device: a malformed datagram is answered with a Reject or Abort
when the standard says so, else dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from emsbox.gateways.bacnet import frames, services
from emsbox.gateways.bacnet.config import BacnetConfig
from emsbox.gateways.bacnet.control import Control, check_password
from emsbox.gateways.bacnet.database import APDU_RETRIES, Database, PropertyError
from emsbox.gateways.bacnet.encoding import DecodeError
from emsbox.gateways.bacnet.frames import (
    ApduError,
    Bvlc,
    ConfirmedRequest,
    FrameError,
    Reply,
    SegmentAck,
    UnconfirmedRequest,
)
from emsbox.gateways.bacnet.identifiers import (
    AbortReason,
    ConfirmedService,
    EnableDisable,
    ErrorClass,
    ErrorCode,
    RejectReason,
    UnconfirmedService,
)
from emsbox.gateways.bacnet.notifications import Notifications
from emsbox.gateways.bacnet.peer import Peer
from emsbox.gateways.bacnet.registration import Registration
from emsbox.gateways.bacnet.segmentation import (
    SegmentationError,
    Transmission,
    answer_limit,
    plan,
)
from emsbox.gateways.bacnet.traffic import AnswerRate, TrafficLog
from emsbox.gateways.bacnet.transmissions import Transmissions

log = logging.getLogger(__name__)

BROADCAST_EVERY_S = 1.0  # at most one broadcast I-Am a second

Switch = Callable[[bool, str], None]  # the digital output on or off, and who asked


@dataclass
class Counters:
    """Counts of what the device received and how it was handled."""

    datagrams: int = 0
    requests: int = 0
    malformed: int = 0
    rejected: int = 0
    unconfirmed_dropped: int = 0


class BroadcastReceiver(asyncio.DatagramProtocol):
    """The receive-only socket on the broadcast address (a socket bound to one unicast
    address is not given the datagrams sent to its subnet's broadcast address): what it
    receives is handled by the device, answered from the device's own socket."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is ready."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is closed."""
        self.lost.set()

    def error_received(self, exc: Exception) -> None:
        """A socket error (never the end of the device)."""
        log.debug("bacnet: broadcast socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """A datagram to the broadcast address: the device's, as if it came to its socket."""
        self.device.datagram_received(data, addr)


class Device(asyncio.DatagramProtocol):
    """The device on its socket, inside the gateway's event loop."""

    def __init__(self, config: BacnetConfig, db: Database, switch: Switch | None) -> None:
        self.config = config
        self.db = db
        self.transport: asyncio.DatagramTransport | None = None
        self.counters = Counters()
        self.control = Control()
        self.transmissions = Transmissions(self.send)
        self.notifications = Notifications(self.send, db, self.control)
        self.registration: Registration | None = None
        self.broadcast_receiver: BroadcastReceiver | None = None
        self.broadcast_problem = ""  # why broadcasts cannot be received, when they cannot
        self.tick_handle: asyncio.TimerHandle | None = None
        self.lost = asyncio.Event()
        self._switch = switch
        self._traffic_log = TrafficLog()
        self._answer_rate = AnswerRate()
        self._broadcast_at = 0.0

    def reconfigure(self, config: BacnetConfig, db: Database) -> None:
        """Serve ``config`` and a new object table on the same socket; subscriptions to
        objects that are gone end."""
        self.config, self.db = config, db
        self.notifications.db = db
        self.notifications.cov.drop_object(set(db.by_key))

    # -- socket -----------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is closed."""
        self.lost.set()

    async def wait_closed(self) -> None:
        """Until the sockets are closed (the transports close them on the next loop turn)."""
        if self.transport is not None:
            await asyncio.wait_for(self.lost.wait(), 5.0)
        receiver = self.broadcast_receiver
        if receiver is not None and receiver.transport is not None:
            await asyncio.wait_for(receiver.lost.wait(), 5.0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The socket is ready."""
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        """A socket error (never the end of the device)."""
        # ICMP "port unreachable" of a vanished client: nothing to do.
        log.debug("bacnet: socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Handle a datagram; an error while doing so costs that datagram only."""
        source = (str(addr[0]), int(addr[1]))
        try:
            self.received(data, source)
        except Exception:  # a bug must cost one datagram, never the device
            self.counters.malformed += 1
            self._note(source, "internal error while handling a datagram", trace=True)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        """A BVLC message to a B/IP address, while the socket is open."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, address)

    def send(self, peer: Peer, apdu: bytes, expecting_reply: bool = False) -> None:
        """An APDU to a peer: unicast, routed back to its network when it came through one."""
        npdu = frames.npdu_header(expecting_reply, peer.snet, peer.sadr)
        self.sendto(frames.bvlc(Bvlc.ORIGINAL_UNICAST, npdu + apdu), peer.address)

    def broadcast(self, apdu: bytes) -> bool:
        """An unconfirmed APDU to every device: on the local broadcast address, and through
        the BBMD when registered (J.4.5). False when neither is set up."""
        npdu = frames.npdu_header() + apdu
        sent = False
        if self.config.broadcast_address:
            message = frames.bvlc(Bvlc.ORIGINAL_BROADCAST, npdu)
            self.sendto(message, (self.config.broadcast_address, self.config.port or 47808))
            sent = True
        reg = self.registration
        if reg is not None and reg.registered:
            self.sendto(frames.bvlc(Bvlc.DISTRIBUTE_BROADCAST, npdu), reg.address)
            sent = True
        return sent

    def announce(self) -> None:
        """Broadcast an I-Am (16.10), unless initiation is disabled (16.1)."""
        if self.control.current(time.monotonic()) == EnableDisable.ENABLE:
            self.broadcast(frames.unconfirmed(UnconfirmedService.I_AM, services.i_am(self.db)))

    def close(self) -> None:
        """Cancel the timers and close the sockets."""
        self.transmissions.close()
        self.notifications.close()
        if self.tick_handle is not None:
            self.tick_handle.cancel()
        if self.transport is not None:
            self.transport.close()
        receiver = self.broadcast_receiver
        if receiver is not None and receiver.transport is not None:
            receiver.transport.close()

    # -- malformed traffic ------------------------------------------------------------------

    def _note(self, source: tuple[str, int], what: str, trace: bool = False) -> None:
        self._traffic_log.note(source, what, self.counters.malformed, trace)

    def _malformed(self, source: tuple[str, int], what: str) -> None:
        self.counters.malformed += 1
        self._note(source, what)

    # -- receiving --------------------------------------------------------------------------

    def _from_bbmd(self, source: tuple[str, int]) -> bool:
        reg = self.registration
        return reg is not None and reg.address == source

    def received(self, data: bytes, source: tuple[str, int]) -> None:
        """Handle one datagram (the BVLC, NPDU and APDU layers in turn)."""
        self.counters.datagrams += 1
        try:
            frame = frames.parse_bvlc(data)
        except FrameError as exc:
            self._malformed(source, str(exc))
            return
        function = frame.function
        reply_to: tuple[str, int] | None = source
        is_broadcast = function == Bvlc.ORIGINAL_BROADCAST
        if function == Bvlc.FORWARDED_NPDU:
            # J.4.5: the original sender is in the message. Answering it is only safe when
            # the message comes from our own BBMD; otherwise anyone could make this device
            # send to an address of their choosing, so only broadcasts answer those.
            reply_to = frame.origin if self._from_bbmd(source) else None
            is_broadcast = True
        elif function == Bvlc.RESULT:
            reg = self.registration
            if (
                reg is not None
                and reg.address == source
                and len(frame.payload) == 2
                and reg.result(int.from_bytes(frame.payload, "big"))
            ):
                self.announce()  # newly registered: made known beyond the subnet
            return
        elif function in frames.BBMD_NAKS:
            # J.2: this device is no BBMD: the functions of one are refused with their NAK.
            self.sendto(frames.bvlc_result(frames.BBMD_NAKS[function]), source)
            return
        elif function != Bvlc.ORIGINAL_UNICAST and not is_broadcast:
            return  # acks of BBMD reads, Secure-BVLL: nothing for this device
        try:
            npdu = frames.parse_npdu(frame.payload)
        except FrameError as exc:
            self._malformed(source, str(exc))
            return
        if npdu.network_message:
            return  # 6.4: network layer messages are for routers; this device is none
        if npdu.dnet is not None and npdu.dnet != frames.GLOBAL_BROADCAST:
            return  # for a device on another network: not routed here
        if npdu.dnet == frames.GLOBAL_BROADCAST:
            is_broadcast = True
        peer = None if reply_to is None else Peer(reply_to, npdu.snet, npdu.sadr)
        try:
            apdu = frames.parse_apdu(npdu.apdu)
        except ApduError as exc:
            self._malformed(source, str(exc))
            if exc.invoke_id is not None and peer is not None and npdu.apdu[0] >> 4 == 0:
                self.send(peer, frames.reject_pdu(exc.invoke_id, RejectReason.OTHER))
            return
        if isinstance(apdu, ConfirmedRequest):
            if peer is not None:
                self._confirmed(peer, apdu, source)
        elif isinstance(apdu, UnconfirmedRequest):
            self._unconfirmed(peer, apdu, is_broadcast, source)
        elif isinstance(apdu, SegmentAck):
            if peer is None or apdu.from_server or not self.transmissions.acknowledged(peer, apdu):
                self._malformed(source, "SegmentACK for no answer in flight")
        elif peer is not None:
            self._reply(peer, apdu)

    # -- confirmed requests -----------------------------------------------------------------

    def _confirmed(self, peer: Peer, request: ConfirmedRequest, source: tuple[str, int]) -> None:
        service = request.service
        control = self.control.current(time.monotonic())
        if control == EnableDisable.DISABLE and service not in (
            ConfirmedService.DEVICE_COMMUNICATION_CONTROL,
            ConfirmedService.REINITIALIZE_DEVICE,
        ):
            return  # 16.1.1.3.1: a disabled device answers only these two
        if (peer, request.invoke_id) in self.transmissions:
            return  # 5.4.5: a duplicate of a request whose answer is being segmented
        self.counters.requests += 1
        invoke = request.invoke_id
        if request.segmented:
            # The device reassembles no segmented request (it is segmented-transmit only).
            self.send(peer, frames.abort_pdu(invoke, AbortReason.SEGMENTATION_NOT_SUPPORTED))
            return
        limit, too_long = answer_limit(
            request.max_apdu, request.segmented_response_accepted, request.max_segments
        )
        try:
            ack = self._execute(peer, request, limit)
        except services.AnswerTooLongError:
            self.send(peer, frames.abort_pdu(invoke, too_long))
            return
        except DecodeError as exc:
            self.counters.rejected += 1
            self._note(source, f"request rejected ({exc})")
            self.send(peer, frames.reject_pdu(invoke, exc.reason))
            return
        except PropertyError as error:
            self.send(peer, frames.error_pdu(invoke, service, error.error_class, error.error_code))
            return
        except services.WpmError as error:
            head = bytes([frames.PduType.ERROR << 4, invoke, service])
            self.send(peer, head + error.encode())
            return
        if ack is None:
            self.send(peer, frames.simple_ack(invoke, service))
            if service == ConfirmedService.SUBSCRIBE_COV:
                self.notifications.initial(peer, request.body)
            return
        try:
            pieces = plan(
                ack,
                request.max_apdu,
                request.segmented_response_accepted,
                request.max_segments,
            )
        except SegmentationError as refused:
            self.send(peer, frames.abort_pdu(invoke, refused.reason))
            return
        if pieces is None:
            self.send(peer, frames.complex_ack(invoke, service, ack))
            return
        if self.transmissions.full(peer):
            self.send(peer, frames.abort_pdu(invoke, AbortReason.OUT_OF_RESOURCES))
            return
        self.transmissions.start(peer, Transmission(invoke, service, pieces, APDU_RETRIES))

    def _execute(self, peer: Peer, request: ConfirmedRequest, limit: int) -> bytes | None:
        """A request's ComplexACK parameters, or None for a SimpleACK; raises AnswerTooLongError
        when they would exceed ``limit`` octets."""
        service, body, db = request.service, request.body, self.db
        if service == ConfirmedService.READ_PROPERTY:
            return services.read_property(db, body)
        if service == ConfirmedService.READ_PROPERTY_MULTIPLE:
            return services.read_property_multiple(db, body, limit)
        if service == ConfirmedService.WRITE_PROPERTY:
            services.write_property(db, body, self._switch_for(peer))
            return None
        if service == ConfirmedService.WRITE_PROPERTY_MULTIPLE:
            services.write_property_multiple(db, body, self._switch_for(peer))
            return None
        if service == ConfirmedService.SUBSCRIBE_COV:
            self.notifications.subscribe(peer, services.parse_subscribe_cov(db, body))
            return None
        if service == ConfirmedService.DEVICE_COMMUNICATION_CONTROL:
            self.control.apply(services.parse_communication_control(body), self._password())
            return None
        if service == ConfirmedService.REINITIALIZE_DEVICE:
            check_password(self._password(), services.parse_reinitialize(body))
            # The right password, but a building's BMS does not restart the meter: that is
            # done from the device's own web interface.
            raise PropertyError(ErrorClass.SERVICES, ErrorCode.SERVICE_REQUEST_DENIED)
        raise DecodeError(RejectReason.UNRECOGNIZED_SERVICE)

    def _password(self) -> str:
        return self.config.dcc_password.get_secret_value()

    def _switch_for(self, peer: Peer) -> services.OutputSwitch | None:
        switch = self._switch
        if switch is None:
            return None
        host, port = peer.address
        return lambda on: switch(on, f"bacnet {host}:{port}")

    def _reply(self, peer: Peer, reply: Reply) -> None:
        """An answer to this device's own requests, or a client's Abort of a segmented one."""
        if reply.pdu_type == frames.PduType.ABORT and not reply.from_server:
            self.transmissions.abort(peer, reply.invoke_id)
            return
        self.notifications.acknowledged(peer, reply.invoke_id)

    # -- unconfirmed requests ---------------------------------------------------------------

    def _unconfirmed(
        self,
        peer: Peer | None,
        request: UnconfirmedRequest,
        is_broadcast: bool,
        source: tuple[str, int],
    ) -> None:
        control = self.control.current(time.monotonic())
        if control == EnableDisable.DISABLE:
            return
        service = request.service
        if service not in (UnconfirmedService.WHO_IS, UnconfirmedService.WHO_HAS):
            return  # never rejected (unconfirmed, 5.4.1); nothing else is for this device
        if service == UnconfirmedService.WHO_HAS and control != EnableDisable.ENABLE:
            return  # 16.1.1.3.1: initiation disabled: only I-Am in answer to Who-Is goes
        self.counters.requests += 1
        try:
            if service == UnconfirmedService.WHO_IS:
                if not services.who_is(self.db, request.body):
                    return
                answer = frames.unconfirmed(UnconfirmedService.I_AM, services.i_am(self.db))
            else:
                have = services.who_has(self.db, request.body)
                if have is None:
                    return
                answer = frames.unconfirmed(UnconfirmedService.I_HAVE, have)
        except DecodeError as exc:
            self._malformed(source, f"bad {UnconfirmedService(service).name}: {exc}")
            return
        if not self._answer_rate.take():
            self.counters.unconfirmed_dropped += 1
            return
        now = time.monotonic()
        # 16.9.2, 16.10.2: the answer may be broadcast (so every BMS learns of the device)
        # or sent to the asker; a broadcast question is answered by broadcast at most once a
        # second, by unicast otherwise.
        if (peer is None or is_broadcast) and now - self._broadcast_at >= BROADCAST_EVERY_S:
            sent = self.broadcast(answer)
            if sent:
                self._broadcast_at = now
            if sent and peer is None:
                return
        if peer is not None:
            self.send(peer, answer)
