//! What the operator keeps of the objects it watches. Shared by the controller's watches and
//! the targets' watches, in a file of its own so neither has to import the other.

use kube::ResourceExt;

/// Drops an object's managedFields (server-side apply bookkeeping) before it is stored: a
/// thousand watched objects would otherwise keep megabytes that nothing reads.
pub fn without_managed_fields(object: &mut impl ResourceExt) {
    object.managed_fields_mut().clear();
}
