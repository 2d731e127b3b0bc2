// Tearing the slab down while an item borrowed from it is still held.
use io_workitem::{Backend, Device, Slab};

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(1).unwrap();
    slab.shutdown();
    drop(item);
}

fn main() {}
