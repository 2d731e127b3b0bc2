//! ntsim
