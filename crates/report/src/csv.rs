//! CSV export (filled in below).
