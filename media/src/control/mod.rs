//! Controlling the relay: the call table both the proxy (in-process) and the rtpengine ng
//! protocol drive (`calls`), the ng protocol itself (`ng`), its bencode (`bencode`), and the
//! other direction: driving another relay, such as rtpengine, over ng (`ng_client`); what a
//! call's media was like (`report`).

pub mod bencode;
mod bridge;
pub mod calls;
pub mod ng;
pub mod ng_client;
pub mod report;

pub use calls::{Calls, Command, CommandResult, ControlError};
pub use report::CallReport;
