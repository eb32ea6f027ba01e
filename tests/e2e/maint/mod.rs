//! Store maintenance: verify and repair, why-depends, path-info sizes,
//! optimise, read-only stores.

mod optimise;
mod path_info;
mod read_only;
mod repair;
mod verify;
mod why_depends;
