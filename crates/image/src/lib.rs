//! nexcage-image
