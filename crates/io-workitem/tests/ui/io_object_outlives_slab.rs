// The I/O object a work item hands out is valid because the slab holds a reference on it: the
// `&Device` cannot outlive the slab (whose teardown releases that reference).
use io_workitem::{Backend, Device, Slab};

fn misuse<B: Backend>(device: &Device) -> *mut nt_abi::DEVICE_OBJECT {
    let kept: &Device;
    {
        let slab = Slab::<B, u32>::new(device, 4, 0x6c53_6957).unwrap();
        let item = slab.acquire(1).unwrap();
        kept = item.io_object();
        drop(item);
    }
    kept.as_raw()
}

fn main() {}
