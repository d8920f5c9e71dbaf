"""Conformance scenarios (EN 13757-2/-3), one module per area."""
