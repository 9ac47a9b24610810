//! The history store (filled in below).
