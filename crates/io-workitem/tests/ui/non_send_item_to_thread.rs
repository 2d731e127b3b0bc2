// Moving an item with a non-Send payload to another thread by hand.
use std::cell::Cell;

use io_workitem::{Backend, Device, Slab};

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, *const Cell<u32>>::new(device, 4, 0x6c53_6957).unwrap();
    let item = slab.acquire(std::ptr::null()).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || drop(item));
    });
}

fn main() {}
