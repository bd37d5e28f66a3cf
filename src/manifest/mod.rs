//! The cleaned manifest: what a reviewer signs off. Hashing binds it to the
//! data, export writes it, signing and verification make it checkable by
//! anyone with `ssh-keygen`.

pub mod allowed_signers;
pub mod export;
pub mod record;
pub mod sign;
pub mod verify;
