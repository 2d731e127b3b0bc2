// Queueing an item that is already queued (bug check 0xE4, parameter 1 = 1, on Windows).
use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};

struct R;
impl<B: Backend> Routine<B, u32> for R {
    fn run(_item: WorkItem<'_, B, u32>) {}
}

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(1).unwrap();
    item.queue::<R>(QueueType::Delayed);
    item.queue_ex::<R>(QueueType::Critical);
}

fn main() {}
