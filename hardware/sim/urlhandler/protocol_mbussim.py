"""``mbussim://NAME``: the master port of the simulated bus registered as NAME."""

from hardware.sim.serial_port import SimSerial as Serial

__all__ = ["Serial"]
