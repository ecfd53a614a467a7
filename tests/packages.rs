//! Placeholder until the package install test lands.
