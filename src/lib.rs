//! alertrelay
pub mod alert;
pub mod config;
pub mod render;
pub mod secret;
