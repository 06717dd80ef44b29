//! The registrar: REGISTER with digest authentication, several devices per user, and bindings
//! that survive a restart. Its place in the workspace is fixed by ARCHITECTURE.md; its contents
//! arrive with issue #3 ("Registrar"), and nothing here pretends otherwise.
