"""Pipeline stages, one module each: plain typed functions that flows call and tests call directly."""
