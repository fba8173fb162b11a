//! alertrelay
pub mod alert;
pub mod config;
pub mod secret;
