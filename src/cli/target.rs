//! The container a command acts on: runc's positional `<ID>`, or the user
//! guide's `--name NAME` (the same thing; give one of them).

#[derive(clap::Args, Debug)]
pub struct Target {
    /// Container name, the user guide's form of ID
    #[arg(long = "name", value_name = "NAME", conflicts_with = "id")]
    pub name: Option<String>,
    /// Container id (or --name)
    #[arg(required_unless_present = "name")]
    pub id: Option<String>,
}

impl Target {
    pub fn id(&self) -> &str {
        self.name.as_deref().or(self.id.as_deref()).unwrap_or_default()
    }
}
