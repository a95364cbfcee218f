//! Editing sections in place.
