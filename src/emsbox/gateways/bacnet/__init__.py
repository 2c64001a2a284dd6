"""The BACnet/IP gateway: the meter as a standard BACnet device (ASHRAE 135, Annex J)."""
