/*
 * TEST-ONLY provider of the six ntoskrnl exports Wine 8.0 lacks. Never shipped, never packaged.
 *
 * `cargo xtask test`'s Wine stage loads the real wdm_workitem.sys in Wine's driver host
 * (winedevice.exe). Wine 8.0's ntoskrnl.exe has no ExAllocatePool2, IoSizeofWorkItem,
 * IoInitializeWorkItem, IoUninitializeWorkItem, IoQueueWorkItemEx or KeQueryPerformanceCounter,
 * so the stage runs a test-time copy of the .sys whose imports of just those names point at this
 * DLL (xtask/src/wine.rs rewrites the copy's import table; the original image is not touched).
 * Everything else the driver imports is Wine's own.
 *
 * This file only makes sense inside Wine, where a driver runs in a user process: it imports from
 * ntdll.dll, which no Windows kernel-mode module can. It is compiled by the Wine stage into the
 * throw-away Wine prefix under target/ and is not part of the driver package.
 *
 * Constants come from crates/nt-abi (xtask passes them as -D definitions), so nothing here
 * restates them. Wine facts it depends on (checked against Wine 8.0's dlls/ntoskrnl.exe):
 *  - IoQueueWorkItem treats its PIO_WORKITEM as { DEVICE_OBJECT *device; routine; context; }:
 *    it references `device`, stores the routine and context, and hands the item to the process
 *    thread pool; the pool thread copies `device` before calling the routine and does not touch
 *    the item afterwards (so uninitializing the item inside its routine is safe, as on Windows).
 *  - ExAllocatePoolWithTag/ExFreePoolWithTag are the process heap; pool type and tag are not
 *    enforced.
 */
#include <stddef.h>
#include <stdint.h>

#ifndef GAPS_ITEM_SIZE
#error "built by xtask/src/wine.rs, which defines the constants from crates/nt-abi"
#endif

#define NTAPI __attribute__((ms_abi))
typedef int32_t NTSTATUS;
typedef void (NTAPI *IO_WORKITEM_ROUTINE)(void *device, void *context);
typedef void (NTAPI *IO_WORKITEM_ROUTINE_EX)(void *io_object, void *context, void *item);

/* Imported from Wine's ntoskrnl.exe. */
__declspec(dllimport) void *NTAPI ExAllocatePoolWithTag(int32_t pool_type, size_t size, uint32_t tag);
__declspec(dllimport) void NTAPI ExFreePoolWithTag(void *p, uint32_t tag);
__declspec(dllimport) void NTAPI IoQueueWorkItem(void *item, IO_WORKITEM_ROUTINE routine,
                                                 int32_t queue_type, void *context);
__declspec(dllimport) void NTAPI KeBugCheckEx(uint32_t code, uintptr_t p1, uintptr_t p2,
                                              uintptr_t p3, uintptr_t p4);
__declspec(dllimport) void NTAPI ExRaiseStatus(NTSTATUS status);
/* Imported from Wine's ntdll.dll (Wine-only: see above). */
__declspec(dllimport) NTSTATUS NTAPI NtQueryPerformanceCounter(int64_t *counter, int64_t *frequency);

/* The caller-allocated item, laid out as Wine's IoQueueWorkItem expects. */
struct gaps_item {
    void *device;
    IO_WORKITEM_ROUTINE routine;
    void *context;
};
_Static_assert(sizeof(struct gaps_item) <= GAPS_ITEM_SIZE, "IoSizeofWorkItem must cover the item");

/* One IoQueueWorkItemEx in flight: what the plain routine needs to call the Ex routine. */
struct ex_call {
    IO_WORKITEM_ROUTINE_EX routine;
    void *context;
    void *item;
};

#define GAPS_TAG 0x70614757u /* 'WGap' */

static void zero(void *p, size_t n)
{
    volatile unsigned char *b = p;
    while (n--) *b++ = 0;
}

int NTAPI DllMain(void *module, uint32_t reason, void *reserved)
{
    (void)module; (void)reason; (void)reserved;
    return 1;
}

/* Zeroed unless POOL_FLAG_UNINITIALIZED; NULL for tag 0, for no or several pool kinds, or when the
 * heap is exhausted (then POOL_FLAG_RAISE_ON_FAILURE raises STATUS_INSUFFICIENT_RESOURCES). */
void *NTAPI ExAllocatePool2(uint64_t flags, size_t size, uint32_t tag)
{
    uint64_t kind = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
    int32_t pool_type;
    void *p;

    if (tag == 0) return NULL;
    if (kind == POOL_FLAG_NON_PAGED) pool_type = NON_PAGED_POOL_NX;
    else if (kind == POOL_FLAG_NON_PAGED_EXECUTE) pool_type = NON_PAGED_POOL;
    else if (kind == POOL_FLAG_PAGED) pool_type = PAGED_POOL;
    else return NULL;
    p = ExAllocatePoolWithTag(pool_type, size, tag);
    if (!p) {
        if (flags & POOL_FLAG_RAISE_ON_FAILURE) ExRaiseStatus((NTSTATUS)STATUS_INSUFFICIENT_RESOURCES);
        return NULL;
    }
    if (!(flags & POOL_FLAG_UNINITIALIZED)) zero(p, size);
    return p;
}

uint32_t NTAPI IoSizeofWorkItem(void)
{
    return GAPS_ITEM_SIZE;
}

void NTAPI IoInitializeWorkItem(void *io_object, void *item)
{
    struct gaps_item *w = item;
    if (!io_object) KeBugCheckEx(WORKER_INVALID, WORKER_INVALID_INVALID_IO_OBJECT, (uintptr_t)item, 0, 0);
    zero(w, sizeof(*w));
    w->device = io_object;
}

void NTAPI IoUninitializeWorkItem(void *item)
{
    zero(item, sizeof(struct gaps_item));
}

static void NTAPI call_ex_routine(void *device, void *context)
{
    struct ex_call call = *(struct ex_call *)context;
    ExFreePoolWithTag(context, GAPS_TAG);
    call.routine(device, call.context, call.item);
}

static int valid_queue_type(int32_t t)
{
    return (t >= CRITICAL_WORK_QUEUE && t < MAXIMUM_WORK_QUEUE)
        || (t >= CUSTOM_PRIORITY_WORK_QUEUE && t <= CUSTOM_PRIORITY_WORK_QUEUE + CUSTOM_PRIORITY_MAX);
}

/* Works for caller-allocated items (IoInitializeWorkItem above) and for IoAllocateWorkItem's
 * (Wine's), since both have Wine's layout; the Ex routine's arguments travel in a small pool
 * block freed before the routine runs. */
void NTAPI IoQueueWorkItemEx(void *item, IO_WORKITEM_ROUTINE_EX routine, int32_t queue_type, void *context)
{
    struct ex_call *call;
    if (!valid_queue_type(queue_type))
        KeBugCheckEx(WORKER_INVALID, WORKER_INVALID_INVALID_QUEUE_TYPE, (uintptr_t)item, (uintptr_t)queue_type, 0);
    if (!routine) KeBugCheckEx(WORKER_INVALID, WORKER_INVALID_INVALID_ROUTINE, (uintptr_t)item, 0, 0);
    call = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, sizeof(*call), GAPS_TAG);
    /* IoQueueWorkItemEx cannot fail on Windows; this test-only shim can, when Wine's heap is
     * exhausted, and then raises rather than reuse a WORKER_INVALID code that means something else. */
    if (!call) ExRaiseStatus((NTSTATUS)STATUS_INSUFFICIENT_RESOURCES);
    call->routine = routine;
    call->context = context;
    call->item = item;
    IoQueueWorkItem(item, call_ex_routine, queue_type, call);
}

int64_t NTAPI KeQueryPerformanceCounter(int64_t *frequency)
{
    int64_t counter = 0, freq = 0;
    NtQueryPerformanceCounter(&counter, &freq);
    if (frequency) *frequency = freq;
    return counter;
}
