// IoQueueWorkItem needs a device object: items of a slab built on the driver object can only be
// queued with IoQueueWorkItemEx.
use io_workitem::{Backend, Driver, QueueType, Routine, Slab, WorkItem};

struct R;
impl<B: Backend> Routine<B, u32> for R {
    fn run(_item: WorkItem<'_, B, u32>) {}
}

fn misuse<B: Backend>(driver: &Driver) {
    let slab = Slab::<B, u32, Driver>::new(driver, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(1).unwrap();
    item.queue::<R>(QueueType::Delayed);
}

fn main() {}
