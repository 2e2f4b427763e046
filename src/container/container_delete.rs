//! delete: refuses a running container unless forced; removes everything
//! create made, then the state dir.

use anyhow::{Context, Result};

use super::Container;
use crate::backend::Backend;
use crate::context::Ctx;

impl Container {
    /// Deletes container `id`. Fails with `StateError::DoesNotExist` when
    /// there is no such container (callers decide whether that is an error).
    pub fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
        let locked = ctx.store()?.lock(id)?;
        let rec = match locked.load() {
            Ok(r) => r,
            // A create that died before writing its record left only the dir.
            Err(_) if force => return locked.remove(),
            Err(e) => return Err(e),
        };
        let c = Container { locked, rec };
        c.status().can_delete(id, force)?;
        let be = c.backend(ctx)?;
        c.teardown(&*be).with_context(|| format!("delete {id}"))?;
        c.locked.remove()
    }

    /// Asks the backend to remove what create made (all but the state dir).
    pub(super) fn teardown(&self, be: &dyn Backend) -> Result<()> {
        // Neither backend reads `force`: delete's refusal is decided above.
        be.delete(&self.rec, self.dir(), true)
    }
}
