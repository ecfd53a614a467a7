//! Placeholder until the NuGet package test lands.
