//! The media relay. Its place in the workspace is fixed by ARCHITECTURE.md; its contents arrive
//! with issue #6 ("Media relay"). It will know nothing of SIP.
