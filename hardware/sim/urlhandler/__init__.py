"""pyserial URL handlers of the simulated bus (``serial.protocol_handler_packages``)."""
