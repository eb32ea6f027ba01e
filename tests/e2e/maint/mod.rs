//! Store maintenance: verify and repair, why-depends, path-info sizes,
//! optimise, read-only stores.

mod repair;
mod verify;
