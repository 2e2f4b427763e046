//! The ok / warn / fail lines of `system check`, `network test`,
//! `registry auth` and `performance check`: one line per component, with a
//! hint when something is wrong.

#[derive(PartialEq, PartialOrd, Clone, Copy)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Default)]
pub struct Report {
    pub failed: bool,
}

impl Report {
    pub fn line(&mut self, level: Level, what: &str, msg: &str, hint: &str) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "fail",
        };
        self.failed |= level == Level::Fail;
        // One line per component, even when a tool's error spans several.
        let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        if hint.is_empty() || level == Level::Ok {
            println!("{tag} {what}: {msg}");
        } else {
            println!("{tag} {what}: {msg} (hint: {hint})");
        }
    }
}

