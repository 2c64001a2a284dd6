"""The Modbus gateway: register maps built from the readings, served over Modbus TCP."""
