// Sending a payload that is not Send (here an Rc) to a system worker thread.
use std::rc::Rc;

use io_workitem::{Backend, Device, QueueType, Routine, Slab, WorkItem};

struct R;
impl<B: Backend> Routine<B, Rc<u32>> for R {
    fn run(_item: WorkItem<'_, B, Rc<u32>>) {}
}

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, Rc<u32>>::new(device, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(Rc::new(1)).unwrap();
    item.queue::<R>(QueueType::Delayed);
}

fn main() {}
