//! Real Nix 2.8 on either side of the serve protocol.
