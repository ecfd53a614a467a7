//! Mail transport. For now the SASL encodings hosts with their own mail code need.

pub mod sasl;
