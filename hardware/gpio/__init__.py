"""GPIO backends: RPi.GPIO (or rpi-lgpio) on a Pi, the simulated backend everywhere else."""

from .backend import GpioBackend
from .factory import BACKEND_KINDS, open_backend
from .rpi import RpiGpio
from .sim import GpioWrite, SimGpio

__all__ = ["BACKEND_KINDS", "GpioBackend", "GpioWrite", "RpiGpio", "SimGpio", "open_backend"]
