//! vigil-sys: every syscall vigil makes, and the only crate with `unsafe`.
//!
//! Program crates are wiring between these functions and the pure decisions in `vigil-core`.
//! Errors are `std::io::Error`; [`diag`] turns them into daemontools' words.

pub mod logio;
