//! A chain of 200 hot functions referring to each other in a cycle: deeper than rustc's
//! recursion limit (128). Nothing generic may be instantiated per hot function along
//! such a chain, or the crate stops compiling (see `hotreload::__rt::catch`).

#![allow(missing_docs)]

#[hotreload::hot]
pub fn f0(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        f1(n - 1)
    }
}
#[hotreload::hot]
pub fn f1(n: u32) -> u32 {
    if n == 0 {
        1
    } else {
        f2(n - 1)
    }
}
#[hotreload::hot]
pub fn f2(n: u32) -> u32 {
    if n == 0 {
        2
    } else {
        f3(n - 1)
    }
}
#[hotreload::hot]
pub fn f3(n: u32) -> u32 {
    if n == 0 {
        3
    } else {
        f4(n - 1)
    }
}
#[hotreload::hot]
pub fn f4(n: u32) -> u32 {
    if n == 0 {
        4
    } else {
        f5(n - 1)
    }
}
#[hotreload::hot]
pub fn f5(n: u32) -> u32 {
    if n == 0 {
        5
    } else {
        f6(n - 1)
    }
}
#[hotreload::hot]
pub fn f6(n: u32) -> u32 {
    if n == 0 {
        6
    } else {
        f7(n - 1)
    }
}
#[hotreload::hot]
pub fn f7(n: u32) -> u32 {
    if n == 0 {
        7
    } else {
        f8(n - 1)
    }
}
#[hotreload::hot]
pub fn f8(n: u32) -> u32 {
    if n == 0 {
        8
    } else {
        f9(n - 1)
    }
}
#[hotreload::hot]
pub fn f9(n: u32) -> u32 {
    if n == 0 {
        9
    } else {
        f10(n - 1)
    }
}
#[hotreload::hot]
pub fn f10(n: u32) -> u32 {
    if n == 0 {
        10
    } else {
        f11(n - 1)
    }
}
#[hotreload::hot]
pub fn f11(n: u32) -> u32 {
    if n == 0 {
        11
    } else {
        f12(n - 1)
    }
}
#[hotreload::hot]
pub fn f12(n: u32) -> u32 {
    if n == 0 {
        12
    } else {
        f13(n - 1)
    }
}
#[hotreload::hot]
pub fn f13(n: u32) -> u32 {
    if n == 0 {
        13
    } else {
        f14(n - 1)
    }
}
#[hotreload::hot]
pub fn f14(n: u32) -> u32 {
    if n == 0 {
        14
    } else {
        f15(n - 1)
    }
}
#[hotreload::hot]
pub fn f15(n: u32) -> u32 {
    if n == 0 {
        15
    } else {
        f16(n - 1)
    }
}
#[hotreload::hot]
pub fn f16(n: u32) -> u32 {
    if n == 0 {
        16
    } else {
        f17(n - 1)
    }
}
#[hotreload::hot]
pub fn f17(n: u32) -> u32 {
    if n == 0 {
        17
    } else {
        f18(n - 1)
    }
}
#[hotreload::hot]
pub fn f18(n: u32) -> u32 {
    if n == 0 {
        18
    } else {
        f19(n - 1)
    }
}
#[hotreload::hot]
pub fn f19(n: u32) -> u32 {
    if n == 0 {
        19
    } else {
        f20(n - 1)
    }
}
#[hotreload::hot]
pub fn f20(n: u32) -> u32 {
    if n == 0 {
        20
    } else {
        f21(n - 1)
    }
}
#[hotreload::hot]
pub fn f21(n: u32) -> u32 {
    if n == 0 {
        21
    } else {
        f22(n - 1)
    }
}
#[hotreload::hot]
pub fn f22(n: u32) -> u32 {
    if n == 0 {
        22
    } else {
        f23(n - 1)
    }
}
#[hotreload::hot]
pub fn f23(n: u32) -> u32 {
    if n == 0 {
        23
    } else {
        f24(n - 1)
    }
}
#[hotreload::hot]
pub fn f24(n: u32) -> u32 {
    if n == 0 {
        24
    } else {
        f25(n - 1)
    }
}
#[hotreload::hot]
pub fn f25(n: u32) -> u32 {
    if n == 0 {
        25
    } else {
        f26(n - 1)
    }
}
#[hotreload::hot]
pub fn f26(n: u32) -> u32 {
    if n == 0 {
        26
    } else {
        f27(n - 1)
    }
}
#[hotreload::hot]
pub fn f27(n: u32) -> u32 {
    if n == 0 {
        27
    } else {
        f28(n - 1)
    }
}
#[hotreload::hot]
pub fn f28(n: u32) -> u32 {
    if n == 0 {
        28
    } else {
        f29(n - 1)
    }
}
#[hotreload::hot]
pub fn f29(n: u32) -> u32 {
    if n == 0 {
        29
    } else {
        f30(n - 1)
    }
}
#[hotreload::hot]
pub fn f30(n: u32) -> u32 {
    if n == 0 {
        30
    } else {
        f31(n - 1)
    }
}
#[hotreload::hot]
pub fn f31(n: u32) -> u32 {
    if n == 0 {
        31
    } else {
        f32(n - 1)
    }
}
#[hotreload::hot]
pub fn f32(n: u32) -> u32 {
    if n == 0 {
        32
    } else {
        f33(n - 1)
    }
}
#[hotreload::hot]
pub fn f33(n: u32) -> u32 {
    if n == 0 {
        33
    } else {
        f34(n - 1)
    }
}
#[hotreload::hot]
pub fn f34(n: u32) -> u32 {
    if n == 0 {
        34
    } else {
        f35(n - 1)
    }
}
#[hotreload::hot]
pub fn f35(n: u32) -> u32 {
    if n == 0 {
        35
    } else {
        f36(n - 1)
    }
}
#[hotreload::hot]
pub fn f36(n: u32) -> u32 {
    if n == 0 {
        36
    } else {
        f37(n - 1)
    }
}
#[hotreload::hot]
pub fn f37(n: u32) -> u32 {
    if n == 0 {
        37
    } else {
        f38(n - 1)
    }
}
#[hotreload::hot]
pub fn f38(n: u32) -> u32 {
    if n == 0 {
        38
    } else {
        f39(n - 1)
    }
}
#[hotreload::hot]
pub fn f39(n: u32) -> u32 {
    if n == 0 {
        39
    } else {
        f40(n - 1)
    }
}
#[hotreload::hot]
pub fn f40(n: u32) -> u32 {
    if n == 0 {
        40
    } else {
        f41(n - 1)
    }
}
#[hotreload::hot]
pub fn f41(n: u32) -> u32 {
    if n == 0 {
        41
    } else {
        f42(n - 1)
    }
}
#[hotreload::hot]
pub fn f42(n: u32) -> u32 {
    if n == 0 {
        42
    } else {
        f43(n - 1)
    }
}
#[hotreload::hot]
pub fn f43(n: u32) -> u32 {
    if n == 0 {
        43
    } else {
        f44(n - 1)
    }
}
#[hotreload::hot]
pub fn f44(n: u32) -> u32 {
    if n == 0 {
        44
    } else {
        f45(n - 1)
    }
}
#[hotreload::hot]
pub fn f45(n: u32) -> u32 {
    if n == 0 {
        45
    } else {
        f46(n - 1)
    }
}
#[hotreload::hot]
pub fn f46(n: u32) -> u32 {
    if n == 0 {
        46
    } else {
        f47(n - 1)
    }
}
#[hotreload::hot]
pub fn f47(n: u32) -> u32 {
    if n == 0 {
        47
    } else {
        f48(n - 1)
    }
}
#[hotreload::hot]
pub fn f48(n: u32) -> u32 {
    if n == 0 {
        48
    } else {
        f49(n - 1)
    }
}
#[hotreload::hot]
pub fn f49(n: u32) -> u32 {
    if n == 0 {
        49
    } else {
        f50(n - 1)
    }
}
#[hotreload::hot]
pub fn f50(n: u32) -> u32 {
    if n == 0 {
        50
    } else {
        f51(n - 1)
    }
}
#[hotreload::hot]
pub fn f51(n: u32) -> u32 {
    if n == 0 {
        51
    } else {
        f52(n - 1)
    }
}
#[hotreload::hot]
pub fn f52(n: u32) -> u32 {
    if n == 0 {
        52
    } else {
        f53(n - 1)
    }
}
#[hotreload::hot]
pub fn f53(n: u32) -> u32 {
    if n == 0 {
        53
    } else {
        f54(n - 1)
    }
}
#[hotreload::hot]
pub fn f54(n: u32) -> u32 {
    if n == 0 {
        54
    } else {
        f55(n - 1)
    }
}
#[hotreload::hot]
pub fn f55(n: u32) -> u32 {
    if n == 0 {
        55
    } else {
        f56(n - 1)
    }
}
#[hotreload::hot]
pub fn f56(n: u32) -> u32 {
    if n == 0 {
        56
    } else {
        f57(n - 1)
    }
}
#[hotreload::hot]
pub fn f57(n: u32) -> u32 {
    if n == 0 {
        57
    } else {
        f58(n - 1)
    }
}
#[hotreload::hot]
pub fn f58(n: u32) -> u32 {
    if n == 0 {
        58
    } else {
        f59(n - 1)
    }
}
#[hotreload::hot]
pub fn f59(n: u32) -> u32 {
    if n == 0 {
        59
    } else {
        f60(n - 1)
    }
}
#[hotreload::hot]
pub fn f60(n: u32) -> u32 {
    if n == 0 {
        60
    } else {
        f61(n - 1)
    }
}
#[hotreload::hot]
pub fn f61(n: u32) -> u32 {
    if n == 0 {
        61
    } else {
        f62(n - 1)
    }
}
#[hotreload::hot]
pub fn f62(n: u32) -> u32 {
    if n == 0 {
        62
    } else {
        f63(n - 1)
    }
}
#[hotreload::hot]
pub fn f63(n: u32) -> u32 {
    if n == 0 {
        63
    } else {
        f64(n - 1)
    }
}
#[hotreload::hot]
pub fn f64(n: u32) -> u32 {
    if n == 0 {
        64
    } else {
        f65(n - 1)
    }
}
#[hotreload::hot]
pub fn f65(n: u32) -> u32 {
    if n == 0 {
        65
    } else {
        f66(n - 1)
    }
}
#[hotreload::hot]
pub fn f66(n: u32) -> u32 {
    if n == 0 {
        66
    } else {
        f67(n - 1)
    }
}
#[hotreload::hot]
pub fn f67(n: u32) -> u32 {
    if n == 0 {
        67
    } else {
        f68(n - 1)
    }
}
#[hotreload::hot]
pub fn f68(n: u32) -> u32 {
    if n == 0 {
        68
    } else {
        f69(n - 1)
    }
}
#[hotreload::hot]
pub fn f69(n: u32) -> u32 {
    if n == 0 {
        69
    } else {
        f70(n - 1)
    }
}
#[hotreload::hot]
pub fn f70(n: u32) -> u32 {
    if n == 0 {
        70
    } else {
        f71(n - 1)
    }
}
#[hotreload::hot]
pub fn f71(n: u32) -> u32 {
    if n == 0 {
        71
    } else {
        f72(n - 1)
    }
}
#[hotreload::hot]
pub fn f72(n: u32) -> u32 {
    if n == 0 {
        72
    } else {
        f73(n - 1)
    }
}
#[hotreload::hot]
pub fn f73(n: u32) -> u32 {
    if n == 0 {
        73
    } else {
        f74(n - 1)
    }
}
#[hotreload::hot]
pub fn f74(n: u32) -> u32 {
    if n == 0 {
        74
    } else {
        f75(n - 1)
    }
}
#[hotreload::hot]
pub fn f75(n: u32) -> u32 {
    if n == 0 {
        75
    } else {
        f76(n - 1)
    }
}
#[hotreload::hot]
pub fn f76(n: u32) -> u32 {
    if n == 0 {
        76
    } else {
        f77(n - 1)
    }
}
#[hotreload::hot]
pub fn f77(n: u32) -> u32 {
    if n == 0 {
        77
    } else {
        f78(n - 1)
    }
}
#[hotreload::hot]
pub fn f78(n: u32) -> u32 {
    if n == 0 {
        78
    } else {
        f79(n - 1)
    }
}
#[hotreload::hot]
pub fn f79(n: u32) -> u32 {
    if n == 0 {
        79
    } else {
        f80(n - 1)
    }
}
#[hotreload::hot]
pub fn f80(n: u32) -> u32 {
    if n == 0 {
        80
    } else {
        f81(n - 1)
    }
}
#[hotreload::hot]
pub fn f81(n: u32) -> u32 {
    if n == 0 {
        81
    } else {
        f82(n - 1)
    }
}
#[hotreload::hot]
pub fn f82(n: u32) -> u32 {
    if n == 0 {
        82
    } else {
        f83(n - 1)
    }
}
#[hotreload::hot]
pub fn f83(n: u32) -> u32 {
    if n == 0 {
        83
    } else {
        f84(n - 1)
    }
}
#[hotreload::hot]
pub fn f84(n: u32) -> u32 {
    if n == 0 {
        84
    } else {
        f85(n - 1)
    }
}
#[hotreload::hot]
pub fn f85(n: u32) -> u32 {
    if n == 0 {
        85
    } else {
        f86(n - 1)
    }
}
#[hotreload::hot]
pub fn f86(n: u32) -> u32 {
    if n == 0 {
        86
    } else {
        f87(n - 1)
    }
}
#[hotreload::hot]
pub fn f87(n: u32) -> u32 {
    if n == 0 {
        87
    } else {
        f88(n - 1)
    }
}
#[hotreload::hot]
pub fn f88(n: u32) -> u32 {
    if n == 0 {
        88
    } else {
        f89(n - 1)
    }
}
#[hotreload::hot]
pub fn f89(n: u32) -> u32 {
    if n == 0 {
        89
    } else {
        f90(n - 1)
    }
}
#[hotreload::hot]
pub fn f90(n: u32) -> u32 {
    if n == 0 {
        90
    } else {
        f91(n - 1)
    }
}
#[hotreload::hot]
pub fn f91(n: u32) -> u32 {
    if n == 0 {
        91
    } else {
        f92(n - 1)
    }
}
#[hotreload::hot]
pub fn f92(n: u32) -> u32 {
    if n == 0 {
        92
    } else {
        f93(n - 1)
    }
}
#[hotreload::hot]
pub fn f93(n: u32) -> u32 {
    if n == 0 {
        93
    } else {
        f94(n - 1)
    }
}
#[hotreload::hot]
pub fn f94(n: u32) -> u32 {
    if n == 0 {
        94
    } else {
        f95(n - 1)
    }
}
#[hotreload::hot]
pub fn f95(n: u32) -> u32 {
    if n == 0 {
        95
    } else {
        f96(n - 1)
    }
}
#[hotreload::hot]
pub fn f96(n: u32) -> u32 {
    if n == 0 {
        96
    } else {
        f97(n - 1)
    }
}
#[hotreload::hot]
pub fn f97(n: u32) -> u32 {
    if n == 0 {
        97
    } else {
        f98(n - 1)
    }
}
#[hotreload::hot]
pub fn f98(n: u32) -> u32 {
    if n == 0 {
        98
    } else {
        f99(n - 1)
    }
}
#[hotreload::hot]
pub fn f99(n: u32) -> u32 {
    if n == 0 {
        99
    } else {
        f100(n - 1)
    }
}
#[hotreload::hot]
pub fn f100(n: u32) -> u32 {
    if n == 0 {
        100
    } else {
        f101(n - 1)
    }
}
#[hotreload::hot]
pub fn f101(n: u32) -> u32 {
    if n == 0 {
        101
    } else {
        f102(n - 1)
    }
}
#[hotreload::hot]
pub fn f102(n: u32) -> u32 {
    if n == 0 {
        102
    } else {
        f103(n - 1)
    }
}
#[hotreload::hot]
pub fn f103(n: u32) -> u32 {
    if n == 0 {
        103
    } else {
        f104(n - 1)
    }
}
#[hotreload::hot]
pub fn f104(n: u32) -> u32 {
    if n == 0 {
        104
    } else {
        f105(n - 1)
    }
}
#[hotreload::hot]
pub fn f105(n: u32) -> u32 {
    if n == 0 {
        105
    } else {
        f106(n - 1)
    }
}
#[hotreload::hot]
pub fn f106(n: u32) -> u32 {
    if n == 0 {
        106
    } else {
        f107(n - 1)
    }
}
#[hotreload::hot]
pub fn f107(n: u32) -> u32 {
    if n == 0 {
        107
    } else {
        f108(n - 1)
    }
}
#[hotreload::hot]
pub fn f108(n: u32) -> u32 {
    if n == 0 {
        108
    } else {
        f109(n - 1)
    }
}
#[hotreload::hot]
pub fn f109(n: u32) -> u32 {
    if n == 0 {
        109
    } else {
        f110(n - 1)
    }
}
#[hotreload::hot]
pub fn f110(n: u32) -> u32 {
    if n == 0 {
        110
    } else {
        f111(n - 1)
    }
}
#[hotreload::hot]
pub fn f111(n: u32) -> u32 {
    if n == 0 {
        111
    } else {
        f112(n - 1)
    }
}
#[hotreload::hot]
pub fn f112(n: u32) -> u32 {
    if n == 0 {
        112
    } else {
        f113(n - 1)
    }
}
#[hotreload::hot]
pub fn f113(n: u32) -> u32 {
    if n == 0 {
        113
    } else {
        f114(n - 1)
    }
}
#[hotreload::hot]
pub fn f114(n: u32) -> u32 {
    if n == 0 {
        114
    } else {
        f115(n - 1)
    }
}
#[hotreload::hot]
pub fn f115(n: u32) -> u32 {
    if n == 0 {
        115
    } else {
        f116(n - 1)
    }
}
#[hotreload::hot]
pub fn f116(n: u32) -> u32 {
    if n == 0 {
        116
    } else {
        f117(n - 1)
    }
}
#[hotreload::hot]
pub fn f117(n: u32) -> u32 {
    if n == 0 {
        117
    } else {
        f118(n - 1)
    }
}
#[hotreload::hot]
pub fn f118(n: u32) -> u32 {
    if n == 0 {
        118
    } else {
        f119(n - 1)
    }
}
#[hotreload::hot]
pub fn f119(n: u32) -> u32 {
    if n == 0 {
        119
    } else {
        f120(n - 1)
    }
}
#[hotreload::hot]
pub fn f120(n: u32) -> u32 {
    if n == 0 {
        120
    } else {
        f121(n - 1)
    }
}
#[hotreload::hot]
pub fn f121(n: u32) -> u32 {
    if n == 0 {
        121
    } else {
        f122(n - 1)
    }
}
#[hotreload::hot]
pub fn f122(n: u32) -> u32 {
    if n == 0 {
        122
    } else {
        f123(n - 1)
    }
}
#[hotreload::hot]
pub fn f123(n: u32) -> u32 {
    if n == 0 {
        123
    } else {
        f124(n - 1)
    }
}
#[hotreload::hot]
pub fn f124(n: u32) -> u32 {
    if n == 0 {
        124
    } else {
        f125(n - 1)
    }
}
#[hotreload::hot]
pub fn f125(n: u32) -> u32 {
    if n == 0 {
        125
    } else {
        f126(n - 1)
    }
}
#[hotreload::hot]
pub fn f126(n: u32) -> u32 {
    if n == 0 {
        126
    } else {
        f127(n - 1)
    }
}
#[hotreload::hot]
pub fn f127(n: u32) -> u32 {
    if n == 0 {
        127
    } else {
        f128(n - 1)
    }
}
#[hotreload::hot]
pub fn f128(n: u32) -> u32 {
    if n == 0 {
        128
    } else {
        f129(n - 1)
    }
}
#[hotreload::hot]
pub fn f129(n: u32) -> u32 {
    if n == 0 {
        129
    } else {
        f130(n - 1)
    }
}
#[hotreload::hot]
pub fn f130(n: u32) -> u32 {
    if n == 0 {
        130
    } else {
        f131(n - 1)
    }
}
#[hotreload::hot]
pub fn f131(n: u32) -> u32 {
    if n == 0 {
        131
    } else {
        f132(n - 1)
    }
}
#[hotreload::hot]
pub fn f132(n: u32) -> u32 {
    if n == 0 {
        132
    } else {
        f133(n - 1)
    }
}
#[hotreload::hot]
pub fn f133(n: u32) -> u32 {
    if n == 0 {
        133
    } else {
        f134(n - 1)
    }
}
#[hotreload::hot]
pub fn f134(n: u32) -> u32 {
    if n == 0 {
        134
    } else {
        f135(n - 1)
    }
}
#[hotreload::hot]
pub fn f135(n: u32) -> u32 {
    if n == 0 {
        135
    } else {
        f136(n - 1)
    }
}
#[hotreload::hot]
pub fn f136(n: u32) -> u32 {
    if n == 0 {
        136
    } else {
        f137(n - 1)
    }
}
#[hotreload::hot]
pub fn f137(n: u32) -> u32 {
    if n == 0 {
        137
    } else {
        f138(n - 1)
    }
}
#[hotreload::hot]
pub fn f138(n: u32) -> u32 {
    if n == 0 {
        138
    } else {
        f139(n - 1)
    }
}
#[hotreload::hot]
pub fn f139(n: u32) -> u32 {
    if n == 0 {
        139
    } else {
        f140(n - 1)
    }
}
#[hotreload::hot]
pub fn f140(n: u32) -> u32 {
    if n == 0 {
        140
    } else {
        f141(n - 1)
    }
}
#[hotreload::hot]
pub fn f141(n: u32) -> u32 {
    if n == 0 {
        141
    } else {
        f142(n - 1)
    }
}
#[hotreload::hot]
pub fn f142(n: u32) -> u32 {
    if n == 0 {
        142
    } else {
        f143(n - 1)
    }
}
#[hotreload::hot]
pub fn f143(n: u32) -> u32 {
    if n == 0 {
        143
    } else {
        f144(n - 1)
    }
}
#[hotreload::hot]
pub fn f144(n: u32) -> u32 {
    if n == 0 {
        144
    } else {
        f145(n - 1)
    }
}
#[hotreload::hot]
pub fn f145(n: u32) -> u32 {
    if n == 0 {
        145
    } else {
        f146(n - 1)
    }
}
#[hotreload::hot]
pub fn f146(n: u32) -> u32 {
    if n == 0 {
        146
    } else {
        f147(n - 1)
    }
}
#[hotreload::hot]
pub fn f147(n: u32) -> u32 {
    if n == 0 {
        147
    } else {
        f148(n - 1)
    }
}
#[hotreload::hot]
pub fn f148(n: u32) -> u32 {
    if n == 0 {
        148
    } else {
        f149(n - 1)
    }
}
#[hotreload::hot]
pub fn f149(n: u32) -> u32 {
    if n == 0 {
        149
    } else {
        f150(n - 1)
    }
}
#[hotreload::hot]
pub fn f150(n: u32) -> u32 {
    if n == 0 {
        150
    } else {
        f151(n - 1)
    }
}
#[hotreload::hot]
pub fn f151(n: u32) -> u32 {
    if n == 0 {
        151
    } else {
        f152(n - 1)
    }
}
#[hotreload::hot]
pub fn f152(n: u32) -> u32 {
    if n == 0 {
        152
    } else {
        f153(n - 1)
    }
}
#[hotreload::hot]
pub fn f153(n: u32) -> u32 {
    if n == 0 {
        153
    } else {
        f154(n - 1)
    }
}
#[hotreload::hot]
pub fn f154(n: u32) -> u32 {
    if n == 0 {
        154
    } else {
        f155(n - 1)
    }
}
#[hotreload::hot]
pub fn f155(n: u32) -> u32 {
    if n == 0 {
        155
    } else {
        f156(n - 1)
    }
}
#[hotreload::hot]
pub fn f156(n: u32) -> u32 {
    if n == 0 {
        156
    } else {
        f157(n - 1)
    }
}
#[hotreload::hot]
pub fn f157(n: u32) -> u32 {
    if n == 0 {
        157
    } else {
        f158(n - 1)
    }
}
#[hotreload::hot]
pub fn f158(n: u32) -> u32 {
    if n == 0 {
        158
    } else {
        f159(n - 1)
    }
}
#[hotreload::hot]
pub fn f159(n: u32) -> u32 {
    if n == 0 {
        159
    } else {
        f160(n - 1)
    }
}
#[hotreload::hot]
pub fn f160(n: u32) -> u32 {
    if n == 0 {
        160
    } else {
        f161(n - 1)
    }
}
#[hotreload::hot]
pub fn f161(n: u32) -> u32 {
    if n == 0 {
        161
    } else {
        f162(n - 1)
    }
}
#[hotreload::hot]
pub fn f162(n: u32) -> u32 {
    if n == 0 {
        162
    } else {
        f163(n - 1)
    }
}
#[hotreload::hot]
pub fn f163(n: u32) -> u32 {
    if n == 0 {
        163
    } else {
        f164(n - 1)
    }
}
#[hotreload::hot]
pub fn f164(n: u32) -> u32 {
    if n == 0 {
        164
    } else {
        f165(n - 1)
    }
}
#[hotreload::hot]
pub fn f165(n: u32) -> u32 {
    if n == 0 {
        165
    } else {
        f166(n - 1)
    }
}
#[hotreload::hot]
pub fn f166(n: u32) -> u32 {
    if n == 0 {
        166
    } else {
        f167(n - 1)
    }
}
#[hotreload::hot]
pub fn f167(n: u32) -> u32 {
    if n == 0 {
        167
    } else {
        f168(n - 1)
    }
}
#[hotreload::hot]
pub fn f168(n: u32) -> u32 {
    if n == 0 {
        168
    } else {
        f169(n - 1)
    }
}
#[hotreload::hot]
pub fn f169(n: u32) -> u32 {
    if n == 0 {
        169
    } else {
        f170(n - 1)
    }
}
#[hotreload::hot]
pub fn f170(n: u32) -> u32 {
    if n == 0 {
        170
    } else {
        f171(n - 1)
    }
}
#[hotreload::hot]
pub fn f171(n: u32) -> u32 {
    if n == 0 {
        171
    } else {
        f172(n - 1)
    }
}
#[hotreload::hot]
pub fn f172(n: u32) -> u32 {
    if n == 0 {
        172
    } else {
        f173(n - 1)
    }
}
#[hotreload::hot]
pub fn f173(n: u32) -> u32 {
    if n == 0 {
        173
    } else {
        f174(n - 1)
    }
}
#[hotreload::hot]
pub fn f174(n: u32) -> u32 {
    if n == 0 {
        174
    } else {
        f175(n - 1)
    }
}
#[hotreload::hot]
pub fn f175(n: u32) -> u32 {
    if n == 0 {
        175
    } else {
        f176(n - 1)
    }
}
#[hotreload::hot]
pub fn f176(n: u32) -> u32 {
    if n == 0 {
        176
    } else {
        f177(n - 1)
    }
}
#[hotreload::hot]
pub fn f177(n: u32) -> u32 {
    if n == 0 {
        177
    } else {
        f178(n - 1)
    }
}
#[hotreload::hot]
pub fn f178(n: u32) -> u32 {
    if n == 0 {
        178
    } else {
        f179(n - 1)
    }
}
#[hotreload::hot]
pub fn f179(n: u32) -> u32 {
    if n == 0 {
        179
    } else {
        f180(n - 1)
    }
}
#[hotreload::hot]
pub fn f180(n: u32) -> u32 {
    if n == 0 {
        180
    } else {
        f181(n - 1)
    }
}
#[hotreload::hot]
pub fn f181(n: u32) -> u32 {
    if n == 0 {
        181
    } else {
        f182(n - 1)
    }
}
#[hotreload::hot]
pub fn f182(n: u32) -> u32 {
    if n == 0 {
        182
    } else {
        f183(n - 1)
    }
}
#[hotreload::hot]
pub fn f183(n: u32) -> u32 {
    if n == 0 {
        183
    } else {
        f184(n - 1)
    }
}
#[hotreload::hot]
pub fn f184(n: u32) -> u32 {
    if n == 0 {
        184
    } else {
        f185(n - 1)
    }
}
#[hotreload::hot]
pub fn f185(n: u32) -> u32 {
    if n == 0 {
        185
    } else {
        f186(n - 1)
    }
}
#[hotreload::hot]
pub fn f186(n: u32) -> u32 {
    if n == 0 {
        186
    } else {
        f187(n - 1)
    }
}
#[hotreload::hot]
pub fn f187(n: u32) -> u32 {
    if n == 0 {
        187
    } else {
        f188(n - 1)
    }
}
#[hotreload::hot]
pub fn f188(n: u32) -> u32 {
    if n == 0 {
        188
    } else {
        f189(n - 1)
    }
}
#[hotreload::hot]
pub fn f189(n: u32) -> u32 {
    if n == 0 {
        189
    } else {
        f190(n - 1)
    }
}
#[hotreload::hot]
pub fn f190(n: u32) -> u32 {
    if n == 0 {
        190
    } else {
        f191(n - 1)
    }
}
#[hotreload::hot]
pub fn f191(n: u32) -> u32 {
    if n == 0 {
        191
    } else {
        f192(n - 1)
    }
}
#[hotreload::hot]
pub fn f192(n: u32) -> u32 {
    if n == 0 {
        192
    } else {
        f193(n - 1)
    }
}
#[hotreload::hot]
pub fn f193(n: u32) -> u32 {
    if n == 0 {
        193
    } else {
        f194(n - 1)
    }
}
#[hotreload::hot]
pub fn f194(n: u32) -> u32 {
    if n == 0 {
        194
    } else {
        f195(n - 1)
    }
}
#[hotreload::hot]
pub fn f195(n: u32) -> u32 {
    if n == 0 {
        195
    } else {
        f196(n - 1)
    }
}
#[hotreload::hot]
pub fn f196(n: u32) -> u32 {
    if n == 0 {
        196
    } else {
        f197(n - 1)
    }
}
#[hotreload::hot]
pub fn f197(n: u32) -> u32 {
    if n == 0 {
        197
    } else {
        f198(n - 1)
    }
}
#[hotreload::hot]
pub fn f198(n: u32) -> u32 {
    if n == 0 {
        198
    } else {
        f199(n - 1)
    }
}
#[hotreload::hot]
pub fn f199(n: u32) -> u32 {
    if n == 0 {
        199
    } else {
        f0(n - 1)
    }
}

#[test]
fn a_cycle_of_200_hot_functions_compiles_and_runs() {
    assert_eq!(f0(0), 0);
    assert_eq!(f0(199), 199);
    assert_eq!(f0(450), 50);
    assert_eq!(hotreload::__rt::hot_fns().len(), 200);
}
