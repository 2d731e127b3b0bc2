// A slab kept past the device its items are initialized against.
use io_workitem::{Backend, Device, Slab};

fn device_of(object: &mut nt_abi::DEVICE_OBJECT) -> &Device {
    // SAFETY: (test) the borrow ties the device's lifetime to `object`.
    unsafe { Device::from_raw(object) }
}

fn misuse<B: Backend>(make: fn() -> nt_abi::DEVICE_OBJECT) {
    let slab;
    {
        let mut object = make();
        slab = Slab::<B, u32>::new(device_of(&mut object), 4, 0x6c53_6957).unwrap();
    }
    drop(slab);
}

fn main() {}
