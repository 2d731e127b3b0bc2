// Custom priorities above 31 are not representable: `new` is the only constructor and the
// field is private.
use io_workitem::{CustomPriority, QueueType};

fn main() {
    let _ = QueueType::Custom(CustomPriority(40));
}
