"""Report configuration: validated models, YAML loading (reports, destinations, templates)
and the database store with optimistic concurrency."""
