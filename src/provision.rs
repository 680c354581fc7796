//! `chorus provision`: run a setup scenario once with the same engine and write the rows it
//! emits (the accounts it created or found) to CSV.
