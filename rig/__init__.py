"""The rig: config -> Rig (composition root), the master instrument, DUT control, the slave-Pi
agent and the ``mbus-rig`` command line."""
