//! nexcage-pve
