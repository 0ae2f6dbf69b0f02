"""Package data: label schemes and versioned prompt templates (no code)."""
