//! Openline's SIP core: messages, transactions and the endpoint dispatcher, as sans-IO state
//! machines. Nothing here reads a clock, opens a socket or spawns a task: time comes in as an
//! argument, randomness through [`Entropy`], and what to send comes out of `poll_output`.

pub mod digest;
pub mod endpoint;
pub mod entropy;
mod error;
pub mod framing;
pub mod fuzz;
pub mod header;
mod lex;
pub mod locate;
pub mod message;
pub mod method;
pub mod pidf;
pub mod table;
pub mod transaction;
pub mod transport;
pub mod uri;

pub use endpoint::{Endpoint, EndpointConfig, Inbound, Output, Verdict};
pub use entropy::{Entropy, SeededEntropy};
pub use error::ParseError;
pub use message::{Message, StartLine};
pub use method::Method;
pub use transport::Transport;
pub use uri::{Host, SipUri, Uri};
