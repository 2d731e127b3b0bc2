// A detached item is 'static, but still only Send if its payload is.
use std::rc::Rc;

use io_workitem::{Backend, Device, Slab};

fn misuse<B: Backend>(device: &Device) {
    let slab = Slab::<B, Rc<u32>>::new(device, 4, 0x6c53_6957).unwrap();
    let detached = slab.acquire(Rc::new(1)).unwrap().detach();
    std::thread::spawn(move || drop(detached));
}

fn main() {}
