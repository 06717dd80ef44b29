//! The openline server: what it answers, how it routes, and the composition root that wires the
//! SIP core to the network.

pub mod admin;
pub mod capabilities;
pub mod config;
pub mod control;
pub mod core;
pub mod doctor;
pub mod forward;
pub mod fuzz;
pub mod logging;
pub mod metrics;
pub mod presence;
pub mod provision_link;
pub mod register;
pub mod reload;
pub mod repeated;
pub mod routing;
pub mod server;
pub mod text;
pub mod wake;
