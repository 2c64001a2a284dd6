"""The MQTT gateway: live state, logged records through an on-disk outbox, Home Assistant
discovery and commands, to any broker or to Azure IoT Hub and AWS IoT Core."""
