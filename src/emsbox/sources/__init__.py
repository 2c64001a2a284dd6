"""Where samples come from: the simulator and recordings, behind one small interface."""
