//! Integration tests: a real alertrelay server on a free port in front of a robot double that
//! speaks DingTalk's protocol. One test binary, modules by subject.

mod binary;
mod bounds;
mod browser;
mod channels;
mod dedup;
mod delivery;
mod fuzz;
mod golden;
mod helpers;
mod limits;
mod mentions;
mod migrate;
mod preview;
mod properties;
mod redis;
mod reload;
mod replicas;
mod robot;
mod send;
mod shutdown;
mod stack;
mod web;
