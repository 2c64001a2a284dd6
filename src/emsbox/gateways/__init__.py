"""Protocol gateways: each serves the measured values over one protocol, never knowing another."""
