//! Whether a function's entry can take a 5-byte jump: checked on the copy that gets
//! it, before anything is written.
//!
//! Three things make it unsafe: the function is shorter than the jump and another
//! function starts inside those five bytes; a branch in the function leads into them
//! other than to their first byte (LLVM's review of a similar scheme warns of loops
//! whose head is the entry's second instruction); or a call ends inside them, so a
//! return would land in the middle of the jump. Decoded with `iced-x86`.

use crate::link::image::{CodeImage, Function};
use iced_x86::{Decoder, DecoderOptions, FlowControl};

/// Bytes the jump takes.
const JUMP: u64 = 5;

/// Why `f`'s entry in `image` cannot take the jump; `None` when it can.
pub fn unfit_in(image: &CodeImage, f: Function) -> Option<&'static str> {
    let Some(code) = image.bytes(f.address, f.size) else {
        return Some("its code is not in the image's file");
    };
    unfit(code, f, image.next_start(f.address))
}

/// Why `f`, whose bytes are `code` and after which the next function starts at
/// `next_start`, cannot take the jump at its entry; `None` when it can.
pub fn unfit(code: &[u8], f: Function, next_start: Option<u64>) -> Option<&'static str> {
    if f.size < JUMP && next_start.is_some_and(|next| next < f.address + JUMP) {
        return Some("it is shorter than a jump, and another function starts within its first 5 bytes");
    }
    let inside = |at: u64| at > f.address && at < f.address + JUMP;
    let decoder = Decoder::with_ip(64, code, f.address, DecoderOptions::NONE);
    for instruction in decoder {
        match instruction.flow_control() {
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch | FlowControl::XbeginXabortXend
                if inside(instruction.near_branch_target()) =>
            {
                return Some("a branch in it leads into its first 5 bytes");
            }
            FlowControl::Call | FlowControl::IndirectCall if inside(instruction.next_ip()) => {
                return Some("a call among its first 5 bytes would return into the jump");
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(size: u64) -> Function {
        Function { address: 0x1000, size }
    }

    #[test]
    fn a_plain_prologue_takes_the_jump() {
        // sub $0x58,%rsp; mov %rdi,0x18(%rsp); ret
        let code = [0x48, 0x83, 0xec, 0x58, 0x48, 0x89, 0x7c, 0x24, 0x18, 0xc3];
        assert_eq!(unfit(&code, at(10), Some(0x1010)), None);
        // A loop back to the entry itself is fine: it runs the jump whole.
        let to_entry = [0x48, 0x83, 0xec, 0x58, 0xeb, 0xfa];
        assert_eq!(unfit(&to_entry, at(6), None), None);
    }

    #[test]
    fn short_functions_branches_and_calls_into_the_first_bytes_are_refused() {
        // ret, with the next function right after it.
        assert!(unfit(&[0xc3], at(1), Some(0x1001)).unwrap().contains("shorter than a jump"));
        // ret followed by padding up to the next function at 0x1010: fine.
        assert_eq!(unfit(&[0xc3], at(1), Some(0x1010)), None);
        // nop; nop; nop; jmp back to 0x1001 (eb fc: 0x1005 - 4).
        let loop_head = [0x90, 0x90, 0x90, 0xeb, 0xfc];
        assert!(unfit(&loop_head, at(5), None).unwrap().contains("branch"));
        // call *%rax; ret: the return address is 0x1002.
        let call = [0xff, 0xd0, 0xc3];
        assert!(unfit(&call, at(3), Some(0x1010)).unwrap().contains("call"));
    }
}
