//! The I/O manager in process: IRPs with Windows layouts sent to Rust dispatch routines of the
//! pseudo-driver "host", METHOD_BUFFERED, access checks, pending completion from a work item,
//! and the I/O verifier rules.
mod ntsim_support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use nt_abi::bugcheck::io_verifier as iov;
use nt_abi::*;
use ntsim::{Machine, Verifier};
use ntsim_support::*;

/// The counters below are per process; the tests here take turns.
static SERIAL: Mutex<()> = Mutex::new(());
static CREATES: AtomicUsize = AtomicUsize::new(0);
static CLEANUPS: AtomicUsize = AtomicUsize::new(0);
static CLOSES: AtomicUsize = AtomicUsize::new(0);
static WRITES: AtomicUsize = AtomicUsize::new(0);
static LAYOUT_OK: AtomicUsize = AtomicUsize::new(0);

const fn code(function: u32, access: u32) -> u32 {
    ctl_code(FILE_DEVICE_UNKNOWN, function, METHOD_BUFFERED, access)
}
const ECHO: u32 = code(0x900, FILE_ANY_ACCESS);
const WRITE_ONLY: u32 = code(0x901, FILE_WRITE_ACCESS);
const PENDING: u32 = code(0x902, FILE_READ_ACCESS);
const OVERFLOW: u32 = code(0x903, FILE_ANY_ACCESS);
const FORGET: u32 = code(0x904, FILE_ANY_ACCESS);
const DOUBLE: u32 = code(0x905, FILE_ANY_ACCESS);

fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) {
    // SAFETY: the IRP our dispatch routine owns until it is completed below.
    let i = unsafe { &mut *irp };
    i.IoStatus.u.Status = status;
    i.IoStatus.Information = information;
    // SAFETY: completing an IRP we own, once.
    unsafe { ntsim::exports::IofCompleteRequest(irp, IO_NO_INCREMENT) };
}

fn stack(irp: *mut IRP) -> &'static mut IO_STACK_LOCATION {
    // SAFETY: a live IRP owned by our dispatch routine.
    let s = unsafe { io_get_current_irp_stack_location(irp) };
    // SAFETY: the current stack location of that IRP, owned with it.
    unsafe { &mut *s }
}

unsafe extern "win64" fn dispatch_simple(_dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    match stack(irp).MajorFunction {
        IRP_MJ_CREATE => CREATES.fetch_add(1, Ordering::SeqCst),
        IRP_MJ_CLEANUP => CLEANUPS.fetch_add(1, Ordering::SeqCst),
        IRP_MJ_CLOSE => CLOSES.fetch_add(1, Ordering::SeqCst),
        _ => 0,
    };
    complete(irp, STATUS_SUCCESS, 0);
    STATUS_SUCCESS
}

unsafe extern "win64" fn complete_later(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let irp = read_usize(ctx as usize) as *mut IRP;
    let item = read_usize(ctx as usize + 8);
    // SAFETY: the pending IRP, still owned by the driver.
    let assoc = unsafe { (*irp).AssociatedIrp };
    // SAFETY: SystemBuffer is the active member for METHOD_BUFFERED.
    let buf = unsafe { assoc.SystemBuffer } as usize;
    write_usize(buf, 0xDEAD_BEEF_0000_0001);
    complete(irp, STATUS_SUCCESS, 8);
    // SAFETY: the item came from IoAllocateWorkItem and is dequeued.
    unsafe { ntsim::exports::IoFreeWorkItem(item as PIO_WORKITEM) };
    free(ctx as usize, TAG);
}

unsafe extern "win64" fn dispatch_ioctl(dev: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let s = stack(irp);
    // SAFETY: the DeviceIoControl member is the active one for IRP_MJ_DEVICE_CONTROL.
    let p = unsafe { s.Parameters.DeviceIoControl };
    // SAFETY: the IRP we own.
    let i = unsafe { &mut *irp };
    // SAFETY: SystemBuffer is the active member for METHOD_BUFFERED.
    let buf = unsafe { i.AssociatedIrp.SystemBuffer } as usize;
    let (inl, outl) = (p.InputBufferLength as usize, p.OutputBufferLength as usize);
    match p.IoControlCode {
        ECHO => {
            let base = irp as usize;
            let layout = i.Type == IO_TYPE_IRP
                && i.StackCount == 1
                && i.CurrentLocation == 1
                && s as *mut IO_STACK_LOCATION as usize == base + 0xD0
                && s.MajorFunction == IRP_MJ_DEVICE_CONTROL
                && s.DeviceObject == dev
                && !s.FileObject.is_null()
                && i.RequestorMode == USER_MODE
                && (buf != 0) == (inl.max(outl) > 0)
                && (buf == 0 || i.Flags & IRP_BUFFERED_IO != 0);
            if layout {
                LAYOUT_OK.fetch_add(1, Ordering::SeqCst);
            }
            let input = bytes(buf, inl);
            let n = inl.min(outl);
            for k in 0..n {
                fill(buf + k, input[inl - 1 - k], 1);
            }
            complete(irp, STATUS_SUCCESS, n);
            STATUS_SUCCESS
        }
        WRITE_ONLY => {
            WRITES.fetch_add(1, Ordering::SeqCst);
            complete(irp, STATUS_SUCCESS, 0);
            STATUS_SUCCESS
        }
        PENDING => {
            s.Control |= SL_PENDING_RETURNED;
            // SAFETY: our device.
            let item = unsafe { ntsim::exports::IoAllocateWorkItem(dev) } as usize;
            let ctx = alloc_np(16);
            write_usize(ctx, irp as usize);
            write_usize(ctx + 8, item);
            queue(item, complete_later, DELAYED_WORK_QUEUE, ctx);
            STATUS_PENDING
        }
        OVERFLOW => {
            complete(irp, STATUS_SUCCESS, outl + 1);
            STATUS_SUCCESS
        }
        FORGET => STATUS_SUCCESS,
        DOUBLE => {
            complete(irp, STATUS_SUCCESS, 0);
            complete(irp, STATUS_SUCCESS, 0);
            STATUS_SUCCESS
        }
        _ => {
            complete(irp, STATUS_INVALID_DEVICE_REQUEST, 0);
            STATUS_INVALID_DEVICE_REQUEST
        }
    }
}

/// A machine whose host driver dispatches to the routines above, reachable as `\\.\NtsimTest`.
fn setup(v: Verifier) -> Machine {
    let m = machine(v);
    let h = m.host_driver().unwrap();
    let drv = h.driver_object() as usize;
    m.run_in_kernel_thread(move || {
        // SAFETY: the host driver object; setting dispatch entries as DriverEntry would.
        let d = unsafe { &mut *(drv as *mut DRIVER_OBJECT) };
        for mj in [IRP_MJ_CREATE, IRP_MJ_CLEANUP, IRP_MJ_CLOSE] {
            d.MajorFunction[mj as usize] = Some(dispatch_simple);
        }
        d.MajorFunction[IRP_MJ_DEVICE_CONTROL as usize] = Some(dispatch_ioctl);
        let (_l, mut link) = unicode("\\DosDevices\\NtsimTest");
        let (_t, mut target) = unicode("\\Device\\NtsimHost");
        // SAFETY: valid UNICODE_STRINGs.
        let st = unsafe { ntsim::exports::IoCreateSymbolicLink(&mut link, &mut target) };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: as above; a second link with the same name collides.
        let st = unsafe { ntsim::exports::IoCreateSymbolicLink(&mut link, &mut target) };
        assert_eq!(st, STATUS_OBJECT_NAME_COLLISION);
    })
    .unwrap();
    m
}

fn remove_link(m: &Machine) {
    m.run_in_kernel_thread(|| {
        let (_l, mut link) = unicode("\\DosDevices\\NtsimTest");
        // SAFETY: a valid UNICODE_STRING.
        let st = unsafe { ntsim::exports::IoDeleteSymbolicLink(&mut link) };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: as above.
        let st = unsafe { ntsim::exports::IoDeleteSymbolicLink(&mut link) };
        assert_eq!(st, STATUS_OBJECT_NAME_NOT_FOUND);
    })
    .unwrap();
}

#[test]
fn create_cleanup_close_and_method_buffered() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let (c0, u0, x0) = (
        CREATES.load(Ordering::SeqCst),
        CLEANUPS.load(Ordering::SeqCst),
        CLOSES.load(Ordering::SeqCst),
    );
    let h = m
        .open(r"\\.\NtsimTest", GENERIC_READ | GENERIC_WRITE)
        .unwrap();
    assert_eq!(CREATES.load(Ordering::SeqCst), c0 + 1);
    let layout0 = LAYOUT_OK.load(Ordering::SeqCst);
    // Output shorter than input: Information bytes come back, no more.
    let r = h.device_io_control(ECHO, &[1, 2, 3, 4, 5], 3).unwrap();
    assert_eq!(
        (r.status, r.information, r.output),
        (STATUS_SUCCESS, 3, vec![5, 4, 3])
    );
    // Output longer than input.
    let r = h.device_io_control(ECHO, &[9, 8], 16).unwrap();
    assert_eq!((r.information, r.output), (2, vec![8, 9]));
    // No buffers at all.
    let r = h.device_io_control(ECHO, &[], 0).unwrap();
    assert_eq!(
        (r.status, r.information, r.output.len()),
        (STATUS_SUCCESS, 0, 0)
    );
    assert_eq!(
        LAYOUT_OK.load(Ordering::SeqCst),
        layout0 + 3,
        "IRP and stack layout as on Windows"
    );
    // Unknown code: the driver's own status.
    assert_eq!(
        h.device_io_control(code(0x9FF, 0), &[], 0).unwrap().status,
        STATUS_INVALID_DEVICE_REQUEST
    );
    h.close().unwrap();
    assert_eq!(CLEANUPS.load(Ordering::SeqCst), u0 + 1);
    assert_eq!(CLOSES.load(Ordering::SeqCst), x0 + 1);
    // Also by the \Device name, and Drop closes.
    {
        let _h = m.open(r"\Device\NtsimHost", FILE_READ_DATA).unwrap();
    }
    assert_eq!(CLOSES.load(Ordering::SeqCst), x0 + 2);
    remove_link(&m);
    assert!(m.open(r"\\.\NtsimTest", GENERIC_READ).is_err());
    assert!(m.audit().is_clean(), "{:?}", m.audit());
}

#[test]
fn a_device_still_initializing_cannot_be_opened() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    // Created outside DriverEntry, so nobody clears DO_DEVICE_INITIALIZING but the driver.
    let dev = m
        .run_in_kernel_thread(move || {
            let (_n, mut name) = unicode("\\Device\\NtsimInitializing");
            let mut dev = std::ptr::null_mut();
            // SAFETY: the host driver object, a valid name and out-pointer.
            let st = unsafe {
                ntsim::exports::IoCreateDevice(
                    drv as *mut DRIVER_OBJECT,
                    0,
                    &mut name,
                    FILE_DEVICE_UNKNOWN,
                    0,
                    FALSE,
                    &mut dev,
                )
            };
            assert_eq!(st, STATUS_SUCCESS);
            dev as usize
        })
        .unwrap();
    match m.open(r"\Device\NtsimInitializing", GENERIC_READ) {
        Err(ntsim::OpenError::Status(s)) => assert_eq!(s, STATUS_NO_SUCH_DEVICE),
        Err(e) => panic!("expected STATUS_NO_SUCH_DEVICE, got {e}"),
        Ok(_) => panic!("opened a device that is still initializing"),
    }
    m.run_in_kernel_thread(move || {
        // SAFETY: the live device created above; the driver clears the flag when it is ready.
        unsafe { (*(dev as *mut DEVICE_OBJECT)).Flags &= !DO_DEVICE_INITIALIZING };
    })
    .unwrap();
    let h = m.open(r"\Device\NtsimInitializing", GENERIC_READ);
    assert!(h.is_ok(), "ready device opens");
    drop(h);
    m.run_in_kernel_thread(move || {
        // SAFETY: our device, no handle open any more.
        unsafe { ntsim::exports::IoDeleteDevice(dev as *mut DEVICE_OBJECT) };
    })
    .unwrap();
}

#[test]
fn access_bits_are_checked_before_the_driver_sees_the_request() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let w0 = WRITES.load(Ordering::SeqCst);
    let ro = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    let r = ro.device_io_control(WRITE_ONLY, &[], 0).unwrap();
    assert_eq!(r.status, STATUS_ACCESS_DENIED);
    assert_eq!(WRITES.load(Ordering::SeqCst), w0, "the driver never saw it");
    let wo = m.open(r"\\.\NtsimTest", GENERIC_WRITE).unwrap();
    assert_eq!(
        wo.device_io_control(WRITE_ONLY, &[], 0).unwrap().status,
        STATUS_SUCCESS
    );
    assert_eq!(WRITES.load(Ordering::SeqCst), w0 + 1);
    assert_eq!(
        wo.device_io_control(PENDING, &[], 8).unwrap().status,
        STATUS_ACCESS_DENIED,
        "read bit needed"
    );
}

#[test]
fn pending_irps_complete_later_from_a_work_item() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let h = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let h = &h;
            s.spawn(move || {
                for _ in 0..20 {
                    let r = h.device_io_control(PENDING, &[], 8).unwrap();
                    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 8));
                    assert_eq!(r.output, 0xDEAD_BEEF_0000_0001u64.to_le_bytes());
                }
            });
        }
    });
    drop(h);
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    assert!(m.audit().pool.is_empty(), "{:?}", m.audit());
}

#[test]
fn information_larger_than_the_output_buffer_is_0xc9_312() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let h = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    let b = h.device_io_control(OVERFLOW, &[0; 4], 4).unwrap_err();
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC9, iov::INFORMATION_EXCEEDS_OUTPUT)
    );
    assert_eq!((b.parameters[2], b.parameters[3]), (5, 4));
    assert_eq!(b.context, "IRP_MJ_DEVICE_CONTROL dispatch");
    std::mem::forget(h);
    // Without the verifier: the copy is clipped to the buffer.
    let m = setup(Verifier::Off);
    let h = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    let r = h.device_io_control(OVERFLOW, &[7; 4], 4).unwrap();
    assert_eq!((r.information, r.output.len()), (5, 4));
}

#[test]
fn a_dispatch_routine_that_neither_completes_nor_pends_is_0xc9_226() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Standard);
    let h = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    let b = h.device_io_control(FORGET, &[], 0).unwrap_err();
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC9, iov::DISPATCH_RETURNED_WITHOUT_COMPLETING)
    );
    assert_eq!(b.parameters[1], dispatch_ioctl as *const () as u64);
    assert_eq!(b.parameters[3], STATUS_SUCCESS as u64);
    std::mem::forget(h);
    assert_eq!(m.bugcheck().unwrap(), b, "the machine stays stopped");
}

#[test]
fn completing_an_irp_twice_is_0x44() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = setup(Verifier::Off);
    let h = m.open(r"\\.\NtsimTest", GENERIC_READ).unwrap();
    let b = h.device_io_control(DOUBLE, &[], 0).unwrap_err();
    assert_eq!(b.code, nt_abi::bugcheck::MULTIPLE_IRP_COMPLETE_REQUESTS);
    assert_eq!(b.name, "MULTIPLE_IRP_COMPLETE_REQUESTS");
    std::mem::forget(h);
}
