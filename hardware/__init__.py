"""Everything that touches a wire: serial ports, GPIO lines, relays and fault lines, and the
simulated bus that stands in for all of them when there is no hardware."""
