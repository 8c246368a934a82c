//! tai64n and tai64nlocal: two small filters over TAI64N stamps, one crate.
#![forbid(unsafe_code)]

pub mod local;
pub mod stamp;
