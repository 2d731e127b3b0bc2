// Touching the payload of an item after queueing it: its routine may be running right now.
use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};

struct R;
impl<B: Backend> Routine<B, u32> for R {
    fn run(_item: WorkItem<'_, B, u32>) {}
}

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
    let mut item = slab.acquire(1).unwrap();
    item.queue::<R>(QueueType::Delayed);
    *item.payload_mut() = 2;
}

fn main() {}
