"""GPIO backends: RPi.GPIO (or rpi-lgpio) on a Pi, the simulated backend everywhere else."""

from .backend import GpioBackend

__all__ = ["GpioBackend"]
