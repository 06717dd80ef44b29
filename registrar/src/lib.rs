//! The registrar: REGISTER with digest authentication, several devices per user, and bindings
//! that survive a restart.
//!
//! The logic is sans-IO: [`register::register`] decides a REGISTER against the current bindings
//! and returns the change to persist; [`auth::Authenticator`] decides digest authentication;
//! [`location::Location`] answers routing from memory. The stores in [`store`] persist users
//! and bindings; the server replies only once a change is durable.

pub mod auth;
pub mod binding;
pub mod location;
pub mod nonce;
pub mod register;
pub mod store;
pub mod user;

pub use binding::{Binding, BindingKey, ChangeSet};
pub use location::Location;
pub use register::{RegistrarConfig, Registration, register};
pub use user::User;
