//! Keys to bytes.
