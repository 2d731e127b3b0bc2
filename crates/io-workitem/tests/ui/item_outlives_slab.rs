// An item kept past its slab: the slab's pool block would be freed under it.
use io_workitem::{Backend, Device, Slab};

fn misuse<B: Backend>(device: &Device) {
    let item;
    {
        let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
        item = slab.acquire(1).unwrap();
    }
    drop(item);
}

fn main() {}
