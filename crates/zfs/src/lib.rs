//! nexcage-zfs
