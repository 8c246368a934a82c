//! Input/output for the logger (multilog): owned by the multilog work.
