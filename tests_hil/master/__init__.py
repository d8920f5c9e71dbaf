"""The master suite: the rig's meters judge an M-Bus master (a rig file whose DUT has
role = "master"), one module per area."""
