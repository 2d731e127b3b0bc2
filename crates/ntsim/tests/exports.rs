//! In-process tests of the emulated exports' Windows semantics (no PE involved): the pseudo
//! driver "host", its device, and `run_in_kernel_thread`.
mod ntsim_support;

use nt_abi::bugcheck::{
    self, bad_pool_caller, bad_pool_caller_ext, verifier as vf, worker_invalid as wi,
};
use nt_abi::*;
use ntsim::Verifier;
use ntsim_support::*;

/// Word `i` of a context block.
fn w(ctx: usize, i: usize) -> usize {
    ctx + 8 * i
}

#[test]
fn every_import_is_emulated_and_type_checked() {
    let table = ntsim::exports::table();
    for name in nt_abi::imports::all_imports() {
        assert!(
            ntsim::exports::lookup(name).is_some(),
            "{name} is declared in nt-abi but not emulated"
        );
    }
    assert_eq!(table.len(), nt_abi::imports::all_imports().count());
    assert!(table.iter().all(|(_, a)| *a != 0));
}

#[test]
fn io_sizeof_work_item_is_configurable_and_init_writes_exactly_that_many_bytes() {
    for size in [0x40u32, 0x58, 0x60] {
        let m = machine_with(|c| c.size_of_work_item = size);
        let dev = m.host_driver().unwrap().device_object() as usize;
        let (got, before, after) = m
            .run_in_kernel_thread(move || {
                let n = size_of_work_item();
                let p = alloc(POOL_FLAG_NON_PAGED | POOL_FLAG_UNINITIALIZED, n + 32, TAG);
                fill(p, 0xAA, n + 32);
                init(dev, p);
                let after = bytes(p, n + 32);
                uninit(p);
                free(p, TAG);
                (n, vec![0xAAu8; 32], after)
            })
            .unwrap();
        assert_eq!(got, size as usize);
        assert_eq!(
            &after[size as usize..],
            &before[..],
            "bytes past IoSizeofWorkItem untouched"
        );
        assert!(
            after[..size as usize].iter().any(|&b| b != 0xAA),
            "item storage initialized"
        );
        assert!(m.audit().is_clean(), "{:?}", m.audit());
    }
}

#[test]
fn pool_allocation_semantics() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        for size in [1usize, 7, 16, 100, 4096, 70000] {
            let p = alloc(POOL_FLAG_NON_PAGED, size, TAG);
            assert_ne!(p, 0);
            assert_eq!(p % 16, 0, "16-byte aligned");
            assert!(bytes(p, size).iter().all(|&b| b == 0), "zeroed");
            free(p, TAG);
        }
        assert_eq!(alloc(POOL_FLAG_NON_PAGED, 16, 0), 0, "tag 0 fails");
        assert_eq!(alloc(0, 16, TAG), 0, "no pool type fails");
        assert_eq!(
            alloc(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 16, TAG),
            0,
            "two pool types fail"
        );
        let p = alloc(POOL_FLAG_PAGED, 32, TAG);
        assert_ne!(p, 0);
        free_untagged(p);
    })
    .unwrap();
    let s = m.pool_stats();
    assert_eq!(s.outstanding_blocks, 0);
    assert_eq!(s.allocations, 7);
    assert_eq!(s.frees, 7);
    // Leaks show up in the audit, with their tag.
    m.run_in_kernel_thread(|| alloc_np(24)).unwrap();
    let a = m.audit();
    assert_eq!(a.pool.len(), 1);
    assert_eq!(a.pool[0].size, 24);
    assert_eq!(a.pool[0].tag_str(), "Test");
}

#[test]
fn zero_byte_allocation_is_0xc4_0_with_verifier_only() {
    let m = machine(Verifier::Standard);
    let b = expect_bugcheck(&m, || alloc(POOL_FLAG_NON_PAGED, 0, TAG));
    assert_eq!(
        (b.code, b.parameters[0], b.parameters[1]),
        (0xC4, vf::ZERO_BYTE_ALLOCATION, 0)
    );
    assert!(b.verifier_rule && !b.documented_only);
    assert_eq!(b.context, "host kernel thread");
    let m = machine(Verifier::Off);
    let p = m
        .run_in_kernel_thread(|| alloc(POOL_FLAG_NON_PAGED, 0, TAG))
        .unwrap();
    assert_ne!(p, 0);
}

#[test]
fn executable_pool_is_0xc4_2000_with_verifier() {
    let m = machine(Verifier::Standard);
    let b = expect_bugcheck(&m, || alloc(POOL_FLAG_NON_PAGED_EXECUTE, 16, TAG));
    assert_eq!((b.code, b.parameters[0]), (0xC4, vf::EXECUTABLE_POOL));
    let m = machine(Verifier::Off);
    assert_ne!(
        m.run_in_kernel_thread(|| alloc(POOL_FLAG_NON_PAGED_EXECUTE, 16, TAG))
            .unwrap(),
        0
    );
}

#[test]
fn double_free_is_0xc4_14_or_0xc2_07() {
    let m = machine(Verifier::Standard);
    let b = expect_bugcheck(&m, || {
        let p = alloc_np(64);
        free(p, TAG);
        free(p, TAG);
    });
    assert_eq!((b.code, b.parameters[0]), (0xC4, vf::DOUBLE_FREE));
    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || {
        let p = alloc_np(64);
        free(p, TAG);
        free(p, TAG);
    });
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC2, bad_pool_caller_ext::DOUBLE_FREE)
    );
    assert!(!b.verifier_rule);
}

#[test]
fn free_of_a_bad_address_is_0xc4_10() {
    let m = machine(Verifier::Standard);
    let b = expect_bugcheck(&m, || free(0x1234_5670, TAG));
    assert_eq!(b.parameters, [vf::FREE_BAD_ADDRESS, 0x1234_5670, 0, 0]);
}

#[test]
fn free_with_the_wrong_tag_is_0xc2_0a() {
    let m = machine(Verifier::Off);
    let wrong = pool_tag(*b"Bad!");
    let (b, p) = {
        let p = m.run_in_kernel_thread(|| alloc_np(32)).unwrap();
        (expect_bugcheck(&m, move || free(p, wrong)), p)
    };
    assert_eq!(b.code, bugcheck::BAD_POOL_CALLER);
    assert_eq!(
        b.parameters,
        [
            bad_pool_caller::FREE_WRONG_TAG,
            p as u64,
            TAG as u64,
            wrong as u64
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Work items
// ---------------------------------------------------------------------------------------------

/// ctx words: 0 event, 1 device seen, 2 context seen, 3 IRQL seen, 4 "on a worker thread"
unsafe extern "win64" fn record_routine(dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx as usize;
    write_usize(w(c, 1), dev as usize);
    write_usize(w(c, 2), c);
    write_usize(w(c, 3), ntsim::ke::irql::get() as usize);
    let name = std::thread::current().name().unwrap_or("").to_string();
    write_usize(w(c, 4), (name == "ntsim-worker-1") as usize);
    set_event(read_usize(w(c, 0)));
}

#[test]
fn io_queue_work_item_runs_the_routine_at_passive_on_a_delayed_worker() {
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let seen = m
        .run_in_kernel_thread(move || {
            let item = alloc_np(size_of_work_item());
            let ctx = alloc_np(64);
            write_usize(w(ctx, 0), new_event(SYNCHRONIZATION_EVENT, false));
            write_usize(w(ctx, 3), 99);
            init(dev, item);
            queue(item, record_routine, DELAYED_WORK_QUEUE, ctx);
            assert_eq!(wait(read_usize(w(ctx, 0)), Some(5000)), STATUS_SUCCESS);
            let seen = (
                read_usize(w(ctx, 1)),
                read_usize(w(ctx, 2)),
                read_usize(w(ctx, 3)),
                read_usize(w(ctx, 4)),
                ctx,
            );
            (seen, item, ctx)
        })
        .unwrap();
    let ((d, c, irql, on_worker, ctx), item, ctx2) = seen;
    assert_eq!(d, dev);
    assert_eq!(c, ctx);
    assert_eq!(irql, PASSIVE_LEVEL as usize);
    assert_eq!(on_worker, 1, "runs on a DelayedWorkQueue system worker");
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    m.run_in_kernel_thread(move || {
        uninit(item);
        free(read_usize(w(ctx2, 0)), TAG);
        free(ctx2, TAG);
        free(item, TAG);
    })
    .unwrap();
    assert!(m.audit().is_clean(), "{:?}", m.audit());
}

/// ctx words: 0 event, 1 IoObject seen, 2 item seen
unsafe extern "win64" fn record_ex_routine(io_object: PVOID, ctx: PVOID, item: PIO_WORKITEM) {
    let c = ctx as usize;
    write_usize(w(c, 1), io_object as usize);
    write_usize(w(c, 2), item as usize);
    uninit(item as usize);
    set_event(read_usize(w(c, 0)));
}

#[test]
fn io_queue_work_item_ex_passes_the_io_object_and_item_and_allows_a_driver_object() {
    let m = machine(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    let (obj, it, item) = m
        .run_in_kernel_thread(move || {
            let item = alloc_np(size_of_work_item());
            let ctx = alloc_np(32);
            write_usize(w(ctx, 0), new_event(NOTIFICATION_EVENT, false));
            init(drv, item);
            queue_ex(item, record_ex_routine, CUSTOM_PRIORITY_WORK_QUEUE + 8, ctx);
            wait(read_usize(w(ctx, 0)), None);
            (read_usize(w(ctx, 1)), read_usize(w(ctx, 2)), item)
        })
        .unwrap();
    assert_eq!((obj, it), (drv, item));
    // The non-Ex variant needs a device object.
    let b = expect_bugcheck(&m, move || {
        init(drv, item);
        queue(item, record_routine, DELAYED_WORK_QUEUE, 0);
    });
    assert_eq!(
        (b.code, b.parameters[0], b.parameters[1]),
        (0xE4, wi::INVALID_IO_OBJECT, item as u64)
    );
    // Documented (IoInitializeWorkItem / IoQueueWorkItem), not shown to be checked by Windows.
    assert!(b.documented_only, "stricter than Windows: {b}");
}

/// ctx words: 0 event, 1 remaining requeues, 2 runs, 3 item
unsafe extern "win64" fn requeue_routine(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx as usize;
    atomic_add(w(c, 2), 1);
    let left = read_usize(w(c, 1));
    let item = read_usize(w(c, 3));
    if left > 0 {
        write_usize(w(c, 1), left - 1);
        queue(item, requeue_routine, NORMAL_WORK_QUEUE, c);
    } else {
        uninit(item);
        set_event(read_usize(w(c, 0)));
    }
}

#[test]
fn requeue_inside_the_routine_and_uninitialize_inside_the_last_one() {
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let runs = m
        .run_in_kernel_thread(move || {
            let item = alloc_np(size_of_work_item());
            let ctx = alloc_np(32);
            write_usize(w(ctx, 0), new_event(SYNCHRONIZATION_EVENT, false));
            write_usize(w(ctx, 1), 9);
            write_usize(w(ctx, 3), item);
            init(dev, item);
            queue(item, requeue_routine, NORMAL_WORK_QUEUE, ctx);
            wait(read_usize(w(ctx, 0)), None);
            read_usize(w(ctx, 2))
        })
        .unwrap();
    assert_eq!(runs, 10);
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    assert!(m.audit().initialized_work_items.is_empty());
    assert_eq!(m.work_item_routines_run(), 10);
}

/// ctx words: 0 event, 1 device, 2 reference count seen inside the routine
unsafe extern "win64" fn refcount_routine(dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx as usize;
    let n = reference(dev as usize);
    dereference(dev as usize);
    write_usize(w(c, 2), n as usize);
    set_event(read_usize(w(c, 0)));
}

#[test]
fn the_io_object_is_referenced_while_queued_and_released_after_the_routine() {
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let (before, inside, item) = m
        .run_in_kernel_thread(move || {
            let before = reference(dev);
            dereference(dev);
            let item = alloc_np(size_of_work_item());
            let ctx = alloc_np(32);
            write_usize(w(ctx, 0), new_event(SYNCHRONIZATION_EVENT, false));
            init(dev, item);
            queue(item, refcount_routine, CRITICAL_WORK_QUEUE, ctx);
            wait(read_usize(w(ctx, 0)), None);
            (before, read_usize(w(ctx, 2)) as isize, item)
        })
        .unwrap();
    assert_eq!(
        inside,
        before + 1,
        "queued item holds one reference on its IoObject"
    );
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    let after = m
        .run_in_kernel_thread(move || {
            let n = reference(dev);
            dereference(dev);
            uninit(item);
            n
        })
        .unwrap();
    assert_eq!(after, before, "dereferenced after the routine returned");
}

/// Blocks its worker until event ctx[0] is set.
unsafe extern "win64" fn gate_routine(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    wait(read_usize(ctx as usize), None);
}

unsafe extern "win64" fn nop_routine(_dev: *mut DEVICE_OBJECT, _ctx: PVOID) {}

/// One worker per queue, its only worker blocked: the next item stays queued.
fn with_a_queued_item(
    verifier: Verifier,
    then: impl FnOnce(usize) + Send + 'static,
) -> (ntsim::BugCheck, usize) {
    let m = machine_with(|c| {
        c.workers_per_queue = 1;
        c.max_workers_per_queue = 1;
        c.verifier = verifier;
    });
    let dev = m.host_driver().unwrap().device_object() as usize;
    let item = m
        .run_in_kernel_thread(move || {
            let gate = alloc_np(8);
            write_usize(gate, new_event(NOTIFICATION_EVENT, false));
            let blocker = alloc_np(size_of_work_item());
            init(dev, blocker);
            queue(blocker, gate_routine, DELAYED_WORK_QUEUE, gate);
            let item = alloc_np(size_of_work_item());
            init(dev, item);
            queue(item, nop_routine, DELAYED_WORK_QUEUE, 0);
            item
        })
        .unwrap();
    let b = expect_bugcheck(&m, move || then(item));
    (b, item)
}

#[test]
fn queueing_a_queued_item_is_0xe4_1() {
    let (b, item) = with_a_queued_item(Verifier::Off, |item| {
        queue(item, nop_routine, DELAYED_WORK_QUEUE, 0)
    });
    assert_eq!(b.code, bugcheck::WORKER_INVALID);
    assert_eq!(
        &b.parameters[..3],
        &[
            wi::QUEUED_ITEM_REQUEUED,
            item as u64,
            DELAYED_WORK_QUEUE as u64
        ]
    );
    assert!(!b.verifier_rule && !b.documented_only);
}

#[test]
fn queueing_a_queued_item_puts_0_in_parameter_4() {
    let (b, _) = with_a_queued_item(Verifier::Off, |item| {
        queue(item, nop_routine, DELAYED_WORK_QUEUE, 0)
    });
    assert_eq!(b.parameters[3], 0, "Bug Check 0xE4 p1=1: p4 = 0");
}

#[test]
fn reinitializing_a_queued_item_is_documented_only_0xe4_2() {
    let (b, item) = with_a_queued_item(Verifier::Off, |item| {
        // The item's own first pointer-sized word is not the device; use the IoObject marker
        // ntsim wrote at 0x28 (any live device object will do).
        let dev = read_usize(item + 0x28);
        init(dev, item)
    });
    assert_eq!(
        b.parameters,
        [
            wi::QUEUED_ITEM_FREED,
            item as u64,
            nop_routine as *const () as u64,
            0
        ]
    );
    assert!(b.documented_only, "stricter than Windows: {b}");
}

#[test]
fn uninitializing_a_queued_item_is_0xe4_2() {
    let (b, item) = with_a_queued_item(Verifier::Off, uninit);
    assert_eq!(
        b.parameters,
        [
            wi::QUEUED_ITEM_FREED,
            item as u64,
            nop_routine as *const () as u64,
            0
        ]
    );
}

#[test]
fn freeing_pool_that_holds_a_queued_item_is_0xe4_0_even_without_verifier() {
    let (b, item) = with_a_queued_item(Verifier::Off, |item| free(item, TAG));
    assert_eq!(
        &b.parameters[..3],
        &[wi::ACTIVE_ITEM_IN_FREED_POOL, item as u64, item as u64]
    );
    assert!(!b.documented_only);
}

#[test]
fn freeing_pool_that_holds_an_initialized_item_is_documented_only_0xe4_0() {
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let block = alloc_np(0x200);
        init(dev, block + 0x100);
        free(block, TAG);
    });
    assert_eq!(b.code, 0xE4);
    assert_eq!(b.parameters[0], wi::ACTIVE_ITEM_IN_FREED_POOL);
    assert_eq!(
        b.parameters[3] - b.parameters[2],
        0x200,
        "p3..p4 = the pool block"
    );
    assert_eq!(b.parameters[1], b.parameters[2] + 0x100);
    assert!(b.documented_only);
    // Windows does not check it: with the verifier off nothing happens.
    let m = machine(Verifier::Off);
    let dev = m.host_driver().unwrap().device_object() as usize;
    m.run_in_kernel_thread(move || {
        let block = alloc_np(0x200);
        init(dev, block + 0x100);
        free(block, TAG);
    })
    .unwrap();
    assert!(
        m.audit().is_clean(),
        "freed pool forgets its items: {:?}",
        m.audit()
    );
}

#[test]
fn invalid_queue_types_are_0xe4_6_and_valid_ones_run() {
    for qt in [7, 8, 31, 64, -1] {
        let m = machine(Verifier::Off);
        let dev = m.host_driver().unwrap().device_object() as usize;
        let b = expect_bugcheck(&m, move || {
            let item = alloc_np(size_of_work_item());
            init(dev, item);
            queue(item, nop_routine, qt, 0);
        });
        assert_eq!(
            (b.code, b.parameters[0], b.parameters[2] as i32),
            (0xE4, wi::INVALID_QUEUE_TYPE, qt)
        );
    }
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    m.run_in_kernel_thread(move || {
        for qt in [0, 1, 2, 3, 4, 5, 6, 32, 47, 63] {
            let item = alloc_np(size_of_work_item());
            init(dev, item);
            queue(item, nop_routine, qt, 0);
        }
    })
    .unwrap();
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    assert_eq!(m.work_item_routines_run(), 10);
}

#[test]
fn initializing_with_an_object_that_is_not_a_device_or_driver_is_0xe4_3() {
    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || {
        let item = alloc_np(size_of_work_item());
        let bogus = alloc_np(0x150);
        init(bogus, item);
        (item, bogus)
    });
    assert_eq!((b.code, b.parameters[0]), (0xE4, wi::INVALID_IO_OBJECT));
    assert_ne!(b.parameters[2], 0);
}

#[test]
fn work_item_storage_rules_0xc4_131() {
    // On the stack: documented, not checked by Windows.
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let mut storage = [0u64; 32];
        init(dev, storage.as_mut_ptr() as usize);
        storage[0]
    });
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC4, vf::WORK_ITEM_IN_PAGEABLE_MEMORY)
    );
    assert!(b.documented_only);
    // In paged pool: a verifier check.
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let p = alloc(POOL_FLAG_PAGED, 0x60, TAG);
        init(dev, p);
    });
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC4, vf::WORK_ITEM_IN_PAGEABLE_MEMORY)
    );
    assert!(!b.documented_only && b.verifier_rule);
    // In memory that is not pool at all (a host heap block).
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let v = Box::leak(vec![0u64; 16].into_boxed_slice());
        init(dev, v.as_mut_ptr() as usize);
    });
    assert_eq!(b.parameters[0], vf::WORK_ITEM_IN_PAGEABLE_MEMORY);
    // Verifier off: Windows does not check.
    let m = machine(Verifier::Off);
    let dev = m.host_driver().unwrap().device_object() as usize;
    m.run_in_kernel_thread(move || {
        let mut storage = [0u64; 32];
        init(dev, storage.as_mut_ptr() as usize);
        uninit(storage.as_mut_ptr() as usize);
        let p = alloc(POOL_FLAG_PAGED, 0x60, TAG);
        init(dev, p);
        uninit(p);
        free(p, TAG);
    })
    .unwrap();
    // Device extensions are nonpaged.
    let m = machine(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    m.run_in_kernel_thread(move || {
        let mut dev: *mut DEVICE_OBJECT = core::ptr::null_mut();
        // SAFETY: the host driver object, no name, a writable out-pointer.
        let st = unsafe {
            ntsim::exports::IoCreateDevice(
                drv as *mut DRIVER_OBJECT,
                0x100,
                core::ptr::null_mut(),
                FILE_DEVICE_UNKNOWN,
                0,
                0,
                &mut dev,
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: the device just created.
        let ext = unsafe { (*dev).DeviceExtension } as usize;
        assert_eq!(ext, dev as usize + 0x150);
        init(dev as usize, ext);
        uninit(ext);
        // SAFETY: our device.
        unsafe { ntsim::exports::IoDeleteDevice(dev) };
    })
    .unwrap();
}

/// Returns holding a spin lock (at DISPATCH_LEVEL).
unsafe extern "win64" fn raise_irql_routine(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    // SAFETY: ctx is a KSPIN_LOCK in pool.
    unsafe { ntsim::exports::KeAcquireSpinLockRaiseToDpc(ctx.cast()) };
}

#[test]
fn a_routine_returning_at_dispatch_level_is_0xe1() {
    for v in [Verifier::Standard, Verifier::Off] {
        let m = machine(v);
        let dev = m.host_driver().unwrap().device_object() as usize;
        let ids = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
        let ids2 = ids.clone();
        let b = expect_bugcheck(&m, move || {
            let item = alloc_np(size_of_work_item());
            let lock = alloc_np(8);
            init(dev, item);
            *ids2.lock().unwrap() = (item, lock);
            queue(item, raise_irql_routine, DELAYED_WORK_QUEUE, lock);
        });
        let (item, lock) = *ids.lock().unwrap();
        assert_eq!(b.code, bugcheck::WORKER_THREAD_RETURNED_AT_BAD_IRQL);
        // p3 = the executive work item's parameter: for an IO_WORKITEM, the item itself (the
        // driver's context, `lock`, is not a parameter on Windows).
        assert_ne!(lock, item);
        assert_eq!(
            b.parameters,
            [
                raise_irql_routine as *const () as u64,
                DISPATCH_LEVEL as u64,
                item as u64,
                item as u64
            ]
        );
        assert_eq!(b.context, "work item routine");
    }
}

#[test]
fn io_allocate_work_item_and_free_inside_the_routine() {
    unsafe extern "win64" fn free_self(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
        let c = ctx as usize;
        // SAFETY: the item came from IoAllocateWorkItem and is dequeued.
        unsafe { ntsim::exports::IoFreeWorkItem(read_usize(w(c, 1)) as PIO_WORKITEM) };
        set_event(read_usize(w(c, 0)));
    }
    let m = machine(Verifier::Standard);
    let dev = m.host_driver().unwrap().device_object() as usize;
    m.run_in_kernel_thread(move || {
        // SAFETY: the host device.
        let item =
            unsafe { ntsim::exports::IoAllocateWorkItem(dev as *mut DEVICE_OBJECT) } as usize;
        assert_ne!(item, 0);
        let ctx = alloc_np(16);
        write_usize(w(ctx, 0), new_event(SYNCHRONIZATION_EVENT, false));
        write_usize(w(ctx, 1), item);
        queue(item, free_self, DELAYED_WORK_QUEUE, ctx);
        wait(read_usize(w(ctx, 0)), None);
        free(read_usize(w(ctx, 0)), TAG);
        free(ctx, TAG);
    })
    .unwrap();
    assert!(m.wait_work_items_idle(std::time::Duration::from_secs(5)));
    assert!(m.audit().is_clean(), "{:?}", m.audit());
}

// ---------------------------------------------------------------------------------------------
// Events, waits, spin locks, time
// ---------------------------------------------------------------------------------------------

#[test]
fn event_semantics() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let n = new_event(NOTIFICATION_EVENT, false);
        assert_eq!(read_event(n), 0);
        let t0 = std::time::Instant::now();
        assert_eq!(wait(n, Some(50)), STATUS_TIMEOUT);
        assert!(t0.elapsed() >= std::time::Duration::from_millis(45));
        assert_eq!(wait(n, Some(0)), STATUS_TIMEOUT, "zero timeout polls");
        assert_eq!(set_event(n), 0, "previous state");
        assert_eq!(set_event(n), 1);
        assert_eq!(wait(n, Some(0)), STATUS_SUCCESS);
        assert_eq!(read_event(n), 1, "notification events stay signaled");
        assert_eq!(reset_event(n), 1);
        assert_eq!(read_event(n), 0);
        set_event(n);
        clear_event(n);
        assert_eq!(read_event(n), 0);
        let s = new_event(SYNCHRONIZATION_EVENT, true);
        assert_eq!(wait(s, None), STATUS_SUCCESS);
        assert_eq!(read_event(s), 0, "synchronization events auto-reset");
        assert_eq!(wait(s, Some(10)), STATUS_TIMEOUT);
    })
    .unwrap();
}

#[test]
fn a_wait_is_satisfied_by_another_thread() {
    let m = machine(Verifier::Standard);
    let e = m
        .run_in_kernel_thread(|| new_event(SYNCHRONIZATION_EVENT, false))
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            m.run_in_kernel_thread(move || {
                let t0 = std::time::Instant::now();
                (wait(e, Some(10_000)), t0.elapsed())
            })
            .unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        m.run_in_kernel_thread(move || set_event(e)).unwrap();
        let (st, took) = waiter.join().unwrap();
        assert_eq!(st, STATUS_SUCCESS);
        assert!(
            took < std::time::Duration::from_secs(5),
            "woken, not timed out: {took:?}"
        );
    });
    assert_eq!(
        m.run_in_kernel_thread(move || read_event(e)).unwrap(),
        0,
        "consumed by the waiter"
    );
}

#[test]
fn spin_locks_raise_to_dispatch_and_release_restores() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let lock = alloc_np(8);
        // SAFETY: a KSPIN_LOCK in pool.
        let old = unsafe { ntsim::exports::KeAcquireSpinLockRaiseToDpc(lock as *mut KSPIN_LOCK) };
        assert_eq!(old, PASSIVE_LEVEL);
        assert_eq!(ntsim::ke::irql::get(), DISPATCH_LEVEL);
        assert_eq!(read_usize(lock), 1, "held");
        // SAFETY: held by us.
        unsafe { ntsim::exports::KeReleaseSpinLock(lock as *mut KSPIN_LOCK, old) };
        assert_eq!(ntsim::ke::irql::get(), PASSIVE_LEVEL);
        assert_eq!(read_usize(lock), 0);
        free(lock, TAG);
    })
    .unwrap();
    let b = expect_bugcheck(&m, || {
        let lock = alloc_np(8);
        // SAFETY: releasing a lock that is not held, at PASSIVE_LEVEL: the rule under test.
        unsafe { ntsim::exports::KeReleaseSpinLock(lock as *mut KSPIN_LOCK, PASSIVE_LEVEL) };
    });
    assert_eq!(
        (b.code, b.parameters[0], b.parameters[1]),
        (0xC4, vf::RELEASE_SPINLOCK_NOT_AT_DISPATCH, 0)
    );
}

#[test]
fn spin_locks_exclude_each_other() {
    let m = machine(Verifier::Standard);
    let block = m.run_in_kernel_thread(|| alloc_np(16)).unwrap();
    // Four kernel threads (each host thread drives its own) contend for one lock.
    std::thread::scope(|s| {
        for _ in 0..4 {
            let m = &m;
            s.spawn(move || {
                m.run_in_kernel_thread(move || {
                    for _ in 0..2000 {
                        let lock = block as *mut KSPIN_LOCK;
                        // SAFETY: a KSPIN_LOCK in pool shared by the four threads.
                        let old = unsafe { ntsim::exports::KeAcquireSpinLockRaiseToDpc(lock) };
                        let v = read_usize(block + 8);
                        std::hint::spin_loop();
                        write_usize(block + 8, v + 1);
                        // SAFETY: held by this thread.
                        unsafe { ntsim::exports::KeReleaseSpinLock(lock, old) };
                    }
                })
                .unwrap();
            });
        }
    });
    let total = m
        .run_in_kernel_thread(move || read_usize(block + 8))
        .unwrap();
    assert_eq!(total, 8000);
}

#[test]
fn performance_counter_and_delay() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let mut f = LARGE_INTEGER { QuadPart: 0 };
        // SAFETY: a writable local.
        let a = unsafe { ntsim::exports::KeQueryPerformanceCounter(&mut f) };
        let mut d = LARGE_INTEGER { QuadPart: -200_000 };
        // SAFETY: a relative 20 ms interval.
        let st = unsafe { ntsim::exports::KeDelayExecutionThread(KERNEL_MODE, 0, &mut d) };
        assert_eq!(st, STATUS_SUCCESS);
        // SAFETY: null frequency is allowed.
        let b = unsafe { ntsim::exports::KeQueryPerformanceCounter(core::ptr::null_mut()) };
        let q = |li: LARGE_INTEGER| {
            // SAFETY: LARGE_INTEGER is plain integer bits in every member.
            unsafe { li.QuadPart }
        };
        let (fq, a, b) = (q(f), q(a), q(b));
        assert_eq!(fq, 10_000_000);
        assert!(b - a >= 190_000, "20 ms at 10 MHz, got {}", b - a);
    })
    .unwrap();
}

#[test]
fn ke_bug_check_ex_stops_the_machine_with_the_drivers_code() {
    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || {
        // SAFETY: stops the emulated machine; never returns.
        unsafe { ntsim::exports::KeBugCheckEx(0xE2, 1, 2, 3, 4) }
    });
    assert_eq!(
        (b.code, b.parameters, b.name),
        (0xE2, [1, 2, 3, 4], "MANUALLY_INITIATED_CRASH")
    );
    // Every later entry is refused.
    assert_eq!(m.run_in_kernel_thread(|| 1).unwrap_err().code, 0xE2);
}

// ---------------------------------------------------------------------------------------------
// Rtl / DbgPrint
// ---------------------------------------------------------------------------------------------

#[test]
fn rtl_init_unicode_string() {
    let m = machine(Verifier::Standard);
    m.run_in_kernel_thread(|| {
        let (w, us) = unicode("\\Device\\X");
        assert_eq!((us.Length, us.MaximumLength), (18, 20));
        assert_eq!(us.Buffer, w.as_ptr() as *mut u16);
        let mut e = UNICODE_STRING {
            Length: 1,
            MaximumLength: 1,
            Buffer: 8 as *mut u16,
        };
        // SAFETY: null source is allowed.
        unsafe { ntsim::exports::RtlInitUnicodeString(&mut e, core::ptr::null()) };
        assert_eq!(
            (e.Length, e.MaximumLength, e.Buffer),
            (0, 0, core::ptr::null_mut())
        );
    })
    .unwrap();
}

#[test]
fn dbgprint_formats_like_the_kernel() {
    // DbgPrint is DEFAULT/INFO: shown only with Kd_DEFAULT_Mask widened (tests/debugger.rs
    // covers the filter itself).
    let m = machine_with(|c| {
        c.dbg_filter = vec![ntsim::DbgFilter {
            component: nt_abi::dbg::DPFLTR_DEFAULT_ID,
            mask: 0xF,
        }]
    });
    m.run_in_kernel_thread(|| {
        let p = ntsim::exports::dbgprint_fn();
        let pe = ntsim::exports::dbgprintex_fn();
        let (_w, us) = unicode("WdmWorkItem");
        let ws: Vec<u16> = "wide".encode_utf16().chain(Some(0)).collect();
        // SAFETY: every format conversion has a matching argument of the right kind.
        unsafe {
            p(
                c"a %d %u %x %X %s|%5d|%-4u|%04x %I64x %p %wZ %ws %c %%\n"
                    .as_ptr()
                    .cast(),
                -5i32,
                4_000_000_000u32,
                255u32,
                255u32,
                c"str".as_ptr(),
                42i32,
                7u32,
                0xABu32,
                0x1234_5678_9ABC_DEF0u64,
                0xFFFF_8000_1234_0000u64,
                &us as *const UNICODE_STRING,
                ws.as_ptr(),
                b'Z' as i32,
            )
        };
        // SAFETY: as above.
        unsafe {
            pe(
                77,
                0,
                c"ex %d and %s\n".as_ptr().cast(),
                3i32,
                c"more".as_ptr(),
            )
        };
        // SAFETY: as above; partial lines are joined.
        unsafe { p(c"part1 ".as_ptr().cast()) };
        // SAFETY: as above.
        unsafe { p(c"part2\n".as_ptr().cast()) };
    })
    .unwrap();
    assert_eq!(
        m.dbgprint_lines(),
        vec![
            "a -5 4000000000 ff FF str|   42|7   |00ab 123456789abcdef0 FFFF800012340000 WdmWorkItem wide Z %"
                .to_string(),
            "ex 3 and more".to_string(),
            "part1 part2".to_string(),
        ]
    );
}

#[test]
fn work_item_storage_smaller_than_io_sizeof_work_item_is_caught_by_special_pool() {
    // A driver that hard-codes Windows 7's 0x40 on a system where the item is 0x60.
    let m = machine_with(|c| c.size_of_work_item = 0x60);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let p = alloc_np(0x40);
        init(dev, p);
    });
    assert_eq!(b.code, bugcheck::DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION);
    assert_eq!(b.parameters[1], 1, "a write");
    // Without the verifier there is no special pool: no bug check (ntsim clips its write).
    let m = machine_with(|c| {
        c.size_of_work_item = 0x60;
        c.verifier = Verifier::Off;
    });
    let dev = m.host_driver().unwrap().device_object() as usize;
    m.run_in_kernel_thread(move || {
        let p = alloc_np(0x40);
        init(dev, p);
        uninit(p);
        free(p, TAG);
    })
    .unwrap();
}

#[test]
fn public_handles_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ntsim::Machine>();
    send_sync::<ntsim::Handle>();
    send_sync::<ntsim::Driver>();
    send_sync::<ntsim::BugCheck>();
}

#[test]
fn cpu_exceptions_in_kernel_threads_are_bug_checks() {
    // Nothing is mapped below mmap_min_addr (64 KiB) on Linux.
    const BAD: usize = 0x1000;
    let m = machine(Verifier::Standard);
    let b = expect_bugcheck(&m, || {
        // SAFETY: deliberately not sound: a read of an unmapped address, the fault under test.
        unsafe { core::ptr::read_volatile(BAD as *const usize) }
    });
    assert_eq!(b.code, bugcheck::PAGE_FAULT_IN_NONPAGED_AREA);
    assert_eq!(b.name, "PAGE_FAULT_IN_NONPAGED_AREA");
    assert_eq!(
        (b.parameters[0], b.parameters[1]),
        (BAD as u64, 0),
        "address, read"
    );
    assert_ne!(b.parameters[2], 0, "faulting instruction");

    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || {
        // SAFETY: deliberately not sound: a write to an unmapped address.
        unsafe { core::ptr::write_volatile(BAD as *mut usize, 1) }
    });
    assert_eq!(
        (b.code, b.parameters[0], b.parameters[1]),
        (0x50, BAD as u64, 1)
    );

    let m = machine(Verifier::Off);
    let b = expect_bugcheck(&m, || {
        // SAFETY: `ud2` raises #UD by design; the handler never returns to this frame.
        unsafe { core::arch::asm!("ud2") }
    });
    assert_eq!(b.code, bugcheck::KMODE_EXCEPTION_NOT_HANDLED);
    assert_eq!(b.parameters[0], STATUS_ILLEGAL_INSTRUCTION as u32 as u64);
    assert_eq!(b.context, "host kernel thread");
}

/// ctx words: 0 event this routine waits for, 1 event it sets afterwards
unsafe extern "win64" fn wait_then_set(_dev: *mut DEVICE_OBJECT, ctx: PVOID) {
    let c = ctx as usize;
    wait(read_usize(w(c, 0)), None);
    set_event(read_usize(w(c, 1)));
}

#[test]
fn routines_that_wait_for_each_other_get_more_workers() {
    // Item k waits for item k+1; the last one is released by the test. With a fixed pool of
    // one worker this would deadlock; the balancer adds a worker each time the queue stalls.
    let m = machine_with(|c| c.workers_per_queue = 1);
    let dev = m.host_driver().unwrap().device_object() as usize;
    let done = m
        .run_in_kernel_thread(move || {
            let n = 3;
            let events: Vec<usize> = (0..=n)
                .map(|_| new_event(NOTIFICATION_EVENT, false))
                .collect();
            let finished = new_event(NOTIFICATION_EVENT, false);
            for k in 0..n {
                let item = alloc_np(size_of_work_item());
                let ctx = alloc_np(16);
                write_usize(w(ctx, 0), events[k + 1]);
                write_usize(w(ctx, 1), if k == 0 { finished } else { events[k] });
                init(dev, item);
                queue(item, wait_then_set, DELAYED_WORK_QUEUE, ctx);
            }
            set_event(events[n]);
            wait(finished, Some(10_000))
        })
        .unwrap();
    assert_eq!(done, STATUS_SUCCESS);
}

fn create_device(drv: usize, name: Option<&'static str>) -> usize {
    let mut dev: *mut DEVICE_OBJECT = core::ptr::null_mut();
    let mut n = name.map(unicode);
    let np = match n.as_mut() {
        Some((_, us)) => us as *mut UNICODE_STRING,
        None => core::ptr::null_mut(),
    };
    // SAFETY: a driver object, a valid or null name, a writable out-pointer.
    let st = unsafe {
        ntsim::exports::IoCreateDevice(
            drv as *mut DRIVER_OBJECT,
            0,
            np,
            FILE_DEVICE_UNKNOWN,
            0,
            0,
            &mut dev,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    dev as usize
}

fn driver_first_device(drv: usize) -> usize {
    // SAFETY: a live driver object ntsim created.
    unsafe { (*(drv as *mut DRIVER_OBJECT)).DeviceObject as usize }
}

fn delete_device(dev: usize) {
    // SAFETY: a device object of the caller.
    unsafe { ntsim::exports::IoDeleteDevice(dev as *mut DEVICE_OBJECT) };
}

#[test]
fn devices_and_links_are_audited_and_deleted_devices_cannot_be_referenced() {
    let m = machine(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    let dev = m
        .run_in_kernel_thread(move || {
            let dev = create_device(drv, Some("\\Device\\Audited"));
            // A second device with the same name collides.
            let mut out: *mut DEVICE_OBJECT = core::ptr::null_mut();
            let (_w, mut us) = unicode("\\Device\\Audited");
            // SAFETY: as in `create_device`.
            let st = unsafe {
                ntsim::exports::IoCreateDevice(
                    drv as *mut DRIVER_OBJECT,
                    0,
                    &mut us,
                    0x22,
                    0,
                    0,
                    &mut out,
                )
            };
            assert_eq!(st, STATUS_OBJECT_NAME_COLLISION);
            let (_l, mut link) = unicode("\\??\\AuditedLink");
            // SAFETY: valid UNICODE_STRINGs.
            let st = unsafe { ntsim::exports::IoCreateSymbolicLink(&mut link, &mut us) };
            assert_eq!(st, STATUS_SUCCESS);
            // The new device heads the driver's device list.
            let head = driver_first_device(drv);
            assert_eq!(head, dev);
            dev
        })
        .unwrap();
    let a = m.audit();
    assert_eq!(a.devices, vec!["\\Device\\Audited".to_string()]);
    assert_eq!(a.links.len(), 1);
    assert!(a.links[0].starts_with("\\??\\AuditedLink -> \\Device\\Audited"));
    m.run_in_kernel_thread(move || {
        let (_l, mut link) = unicode("\\DosDevices\\AuditedLink");
        // SAFETY: a valid UNICODE_STRING (`\??\` and `\DosDevices\` are the same directory).
        let st = unsafe { ntsim::exports::IoDeleteSymbolicLink(&mut link) };
        assert_eq!(st, STATUS_SUCCESS);
        delete_device(dev);
        // The deleted device left the driver's list.
        let head = driver_first_device(drv);
        assert_ne!(head, dev);
    })
    .unwrap();
    assert!(m.audit().is_clean(), "{:?}", m.audit());
    // The deleted device is gone: referencing it is 0x18, initializing an item with it 0xE4/3.
    let b = expect_bugcheck(&m, move || reference(dev));
    assert_eq!(
        (b.code, b.parameters[0]),
        (bugcheck::REFERENCE_BY_POINTER, dev as u64)
    );
    let m = machine(Verifier::Off);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let dev = create_device(drv, None);
        delete_device(dev);
        init(dev, alloc_np(size_of_work_item()));
    });
    assert_eq!((b.code, b.parameters[0]), (0xE4, wi::INVALID_IO_OBJECT));
}

#[test]
fn dereferencing_below_zero_is_0xc4_3f_with_verifier() {
    let m = machine(Verifier::Standard);
    let drv = m.host_driver().unwrap().driver_object() as usize;
    let b = expect_bugcheck(&m, move || {
        let dev = create_device(drv, None);
        assert_eq!(reference(dev), 2);
        assert_eq!(dereference(dev), 1);
        assert_eq!(dereference(dev), 0, "the creation reference");
        dereference(dev);
    });
    assert_eq!(
        (b.code, b.parameters[0]),
        (0xC4, vf::REFERENCE_COUNT_UNDERFLOW)
    );
}
