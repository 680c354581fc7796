//! HAR 1.2: the serde types of a capture, a tolerant reader and a crash-safe writer.
//!
//! Owns the file format only; what goes into an entry is `record`'s business and what an entry
//! means is `convert`'s.
