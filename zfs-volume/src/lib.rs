//! xapi-zvol's safe ZFS layer.
