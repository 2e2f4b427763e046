use crate::suite::Case;
pub fn cases() -> Vec<Case> { vec![] }
