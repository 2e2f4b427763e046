//! nexcage-config
