"""GPIO backends: RPi.GPIO (or rpi-lgpio) on a Pi, the simulated backend everywhere else."""

from .backend import GpioBackend
from .sim import GpioWrite, SimGpio

__all__ = ["GpioBackend", "GpioWrite", "SimGpio"]
