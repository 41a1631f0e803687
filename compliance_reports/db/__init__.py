"""Schema, engines and migrations for the application and audit databases."""
