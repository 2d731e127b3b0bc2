// Queueing a payload that borrows the caller's stack: the routine may run after the frame is
// gone, so queued payloads must be 'static.
use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};

struct R;
impl<'a, B: Backend> Routine<B, &'a u32> for R {
    fn run(_item: WorkItem<'_, B, &'a u32>) {}
}

fn misuse<'a, B: Backend>(device: &Device, local: &'a u32) {
    let slab = Slab::<B, &'a u32>::new(device, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(local).unwrap();
    item.queue::<R>(QueueType::Delayed);
}

fn main() {}
