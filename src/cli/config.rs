//! `nexcage config show|get|set`: nexcage's own configuration file. `set`
//! validates the whole result before writing it atomically (nexcage-config).

use anyhow::Result;

use super::Ctx;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Print the effective configuration (secrets redacted)
    Show,
    /// Print one key (dotted, e.g. storage.pool)
    Get {
        key: String,
    },
    /// Set one key; the file is rewritten only if the result is valid
    Set {
        key: String,
        /// JSON value, or a plain string
        value: String,
    },
}

pub fn run(cmd: Cmd, ctx: &Ctx) -> Result<i32> {
    match cmd {
        Cmd::Show => {
            let loaded = nexcage_config::load(ctx.config_path.as_deref())?;
            match &loaded.path {
                Some(p) => eprintln!("# {}", p.display()),
                None => eprintln!("# defaults (no config file)"),
            }
            println!("{}", serde_json::to_string_pretty(&loaded.config)?);
        }
        Cmd::Get { key } => {
            let v = nexcage_config::get_key(&ctx.config()?, &key)?;
            match v {
                serde_json::Value::String(s) => println!("{s}"),
                v => println!("{v}"),
            }
        }
        Cmd::Set { key, value } => {
            let (path, _) = nexcage_config::resolve_path(ctx.config_path.as_deref(), &|k| std::env::var(k).ok());
            nexcage_config::set_key(&path, &key, nexcage_config::parse_value(&value))?;
            eprintln!("{key} set in {}", path.display());
        }
    }
    Ok(0)
}
