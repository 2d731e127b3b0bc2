// Values whose drop does real work (uninitialize an item, drain and free a slab) or that carry
// a verdict must not be discarded by accident: each statement below is a `#[must_use]` warning,
// an error under `deny`.
#![deny(unused_must_use)]
use io_workitem::{Backend, Device, Routine, Slab, WorkItem};

struct HandBack;
impl<B: Backend> Routine<B, u32> for HandBack {
    fn run(item: WorkItem<'_, B, u32>) {
        item.detach(); // the Detached is dropped at once: uninitialized here, not handed back
    }
}

fn misuse<B: Backend>(device: &Device) {
    Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap(); // slab created and torn down at once
    let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
    slab.acquire(1).unwrap(); // item initialized and uninitialized at once
    slab.acquire(2).unwrap().into_payload();
    slab.shutdown(); // the leak report is ignored
}

fn main() {}
