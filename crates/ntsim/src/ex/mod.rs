//! Executive (above `ke` and `mm`): pool ([`pool`]) and the system worker queues with their
//! threads ([`worker`]). It imports no higher layer: the I/O manager's work items reach the
//! worker queues as [`worker::WorkEntry`] values, and pool frees reach the I/O manager's
//! work-item table through the hook the composition root registers ([`pool::FreeHook`]).
pub(crate) mod fastmutex;
pub(crate) mod interlocked;
pub mod lookaside;
pub mod pool;
pub mod raise;
pub(crate) mod resource;
pub(crate) mod rtl_pool;
pub mod system_routine;
pub(crate) mod worker;

/// The executive's state.
pub(crate) struct Ex<E> {
    pub(crate) pool: pool::Pool,
    pub(crate) workers: worker::Workers<E>,
    /// Every initialized ERESOURCE (`resource`).
    pub(crate) resources: resource::Resources,
}

impl<E: worker::WorkEntry> Ex<E> {
    pub(crate) fn new(
        on_free: pool::FreeHook,
        special: Option<crate::mm::special::SpecialPoolMode>,
    ) -> Self {
        Ex {
            pool: pool::Pool::new(on_free, special),
            workers: worker::Workers::new(),
            resources: resource::Resources::default(),
        }
    }
}
