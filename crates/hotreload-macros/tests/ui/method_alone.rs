struct S;

impl S {
    #[hotreload::hot]
    fn get(&self) -> u32 {
        1
    }
}

fn main() {}
