//! Unit tests of the fix engine: filled below.
