#[hotreload::hot]
struct S;

#[hotreload::hot(fast)]
fn f() {}

fn main() {}
