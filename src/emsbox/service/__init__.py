"""The running service: live acquisition, commands and the composition of every part."""
