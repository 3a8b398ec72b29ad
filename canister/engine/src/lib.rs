//! Plugin engine (work in progress).
