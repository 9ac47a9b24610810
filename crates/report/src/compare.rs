//! Run-to-run comparison (filled in below).
