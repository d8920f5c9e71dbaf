"""The slave-Pi agent: the emulated slave on the TSS721A UART, its HTTP/JSON control API, and
the client the rig uses (hardware/docs/slave-pi.md)."""
