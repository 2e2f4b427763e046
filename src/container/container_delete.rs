//! delete: refuses a running container unless forced; removes everything
//! create made, then the state dir.

use anyhow::{Context, Result};

use super::Container;
use crate::backend::Backend;
use crate::context::Ctx;
use crate::state::Record;

impl Container {
    /// Deletes container `id`. Fails with `StateError::DoesNotExist` when
    /// there is no such container (callers decide whether that is an error).
    pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
        Self::delete_record(ctx, id, force).map(drop)
    }

    /// As `delete`, and returns the record it deleted (`None` when a
    /// failed create had left only the directory), so a caller needs no
    /// second lock and read to learn what it was.
    pub fn delete_record(ctx: &Ctx, id: &str, force: bool) -> Result<Option<Record>> {
        let locked = ctx.store()?.lock(id)?;
        let rec = match locked.load() {
            Ok(r) => r,
            // A create that died before writing its record left only the dir.
            Err(_) if force => return locked.remove().map(|()| None),
            Err(e) => return Err(e),
        };
        let c = Container { locked, rec, console: None };
        c.status().can_delete(id, force)?;
        let be = c.backend(ctx)?;
        c.teardown(&*be).with_context(|| format!("delete {id}"))?;
        c.locked.remove()?;
        Ok(Some(c.rec))
    }

    /// Asks the backend to remove what create made (all but the state dir).
    pub(super) fn teardown(&self, be: &dyn Backend) -> Result<()> {
        Ok(be.delete(&self.rec, self.dir())?)
    }
}
