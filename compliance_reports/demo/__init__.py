"""Demo data: realistic audit traffic per organization (one module per kind of traffic),
assembled by `seed`, and the local mail catcher the demo delivers to."""
