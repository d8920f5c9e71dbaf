"""Pure M-Bus (EN 13757-2 link layer, EN 13757-3 application layer): no I/O, no clock, no globals.

Engines take received characters (with their receive time and error flags) and the current
time as arguments and return events and bytes to send, in the style of h11.
"""
