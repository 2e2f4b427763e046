//! nexcage-pve: the Proxmox VE control plane.
//!
//! * [`mapping`]: a pure function from an OCI runtime spec to a Proxmox
//!   container config (`/etc/pve/lxc/<vmid>.conf` keys plus raw `lxc.*`).
//! * [`conffile`]: that file format, written and parsed like pve-container.
//! * [`schema`]: a strict validator against the official API schema.
//! * [`driver`]: the [`driver::ControlPlane`] trait with a `pct`/`pvesh`
//!   implementation and a REST API implementation.

pub mod conffile;
pub mod driver;
pub mod mapping;
pub mod schema;
