//! Test data from CSV files: `unique`, `cycle`, `random` and `shared` row sources.
