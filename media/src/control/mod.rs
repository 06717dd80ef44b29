//! Controlling the relay: the call table both the proxy (in-process) and the rtpengine ng
//! protocol drive (`calls`), the ng protocol itself (`ng`), and its bencode (`bencode`).

pub mod bencode;
pub mod calls;
pub mod ng;

pub use calls::{Calls, Command, CommandResult, ControlError};
