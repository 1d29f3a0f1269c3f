"""ParkOps: real-time parking operations."""
