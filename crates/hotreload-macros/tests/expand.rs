//! The hot form of many signature shapes compiles and behaves like the original.
//! (`always-hot` makes `#[hot]` expand as in a `cargo hotreload run` build.)

#![allow(missing_docs)]

use std::fmt;

#[hotreload::hot]
pub fn plain(x: u32) -> u32 {
    x + 1
}

#[hotreload::hot]
fn patterns((a, b): (u32, u32), mut c: u32, _: u8) -> u32 {
    c += a * b;
    c
}

#[hotreload::hot]
fn lifetimes<'a>(s: &'a str, _t: &str) -> &'a str {
    &s[1..]
}

#[hotreload::hot]
unsafe fn raw(p: *const u32) -> u32 {
    unsafe { *p }
}

#[hotreload::hot]
extern "C" fn c_abi(x: i32) -> i32 {
    -x
}

#[hotreload::hot]
fn early_return(x: Option<u32>) -> Result<u32, String> {
    let v = x.ok_or("none")?;
    if v > 10 {
        return Ok(10);
    }
    Ok(v)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    x: i64,
    y: i64,
}

#[hotreload::hot]
impl Point {
    pub const ORIGIN: Point = Point { x: 0, y: 0 };

    pub fn new(x: i64, y: i64) -> Self {
        Point { x, y }
    }

    pub fn add(&self, other: &Self) -> Self {
        Point { x: self.x + other.x, y: self.y + other.y }
    }

    pub fn shift(&mut self, (dx, dy): (i64, i64)) {
        self.x += dx;
        self.y += dy;
    }

    pub fn into_tuple(self) -> (i64, i64) {
        (self.x, self.y)
    }

    pub fn boxed(self: Box<Self>) -> i64 {
        self.x
    }

    pub fn name(&self, prefix: &str) -> &str {
        let _ = prefix;
        "point"
    }

    pub fn generic<T: Into<i64>>(&self, t: T) -> i64 {
        self.x + t.into()
    }

    pub const fn constant(&self) -> i64 {
        self.y
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hot_display(self, f)
    }
}

#[hotreload::hot]
fn hot_display(p: &Point, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "({}, {})", p.x, p.y)
}

pub trait Shape {
    fn area(&self) -> f64;
    fn scaled(&self, k: f64) -> Box<dyn Shape>;
}

pub struct Square(f64);

#[hotreload::hot]
impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }

    fn scaled(&self, k: f64) -> Box<dyn Shape> {
        Box::new(Square(self.0 * k))
    }
}

#[hotreload::hot]
mod inner {
    pub fn double(x: u32) -> u32 {
        x * 2
    }

    pub fn generic<T: Clone>(t: &T) -> T {
        t.clone()
    }

    pub struct Wrap(pub u32);

    impl Wrap {
        pub fn get(&self) -> u32 {
            self.0
        }
    }
}

#[hotreload::hot]
fn panics(fail: bool) -> u32 {
    if fail {
        panic!("from hot code");
    }
    0
}

#[test]
fn free_functions_behave_as_written() {
    assert_eq!(plain(1), 2);
    let f: fn(u32) -> u32 = plain;
    assert_eq!(f(2), 3);
    assert_eq!(patterns((2, 3), 1, 0), 7);
    assert_eq!(lifetimes("abc", "x"), "bc");
    assert_eq!(unsafe { raw(&5) }, 5);
    assert_eq!(c_abi(3), -3);
    assert_eq!(early_return(Some(3)), Ok(3));
    assert_eq!(early_return(Some(30)), Ok(10));
    assert_eq!(early_return(None), Err("none".to_string()));
    assert_eq!(format!("{}", Point::new(1, 2)), "(1, 2)");
}

#[test]
fn methods_behave_as_written() {
    let mut p = Point::new(1, 2);
    assert_eq!(p.add(&Point::new(10, 20)), Point::new(11, 22));
    p.shift((1, 1));
    assert_eq!(p.clone().into_tuple(), (2, 3));
    assert_eq!(Box::new(p.clone()).boxed(), 2);
    assert_eq!(p.name("x"), "point");
    assert_eq!(p.generic(5u8), 7);
    assert_eq!(p.constant(), 3);
    assert_eq!(Point::ORIGIN, Point::new(0, 0));
    let shapes: Vec<Box<dyn Shape>> = vec![Box::new(Square(2.0)), Square(1.0).scaled(3.0)];
    assert_eq!(shapes.iter().map(|s| s.area()).sum::<f64>(), 13.0);
    assert_eq!(inner::double(4), 8);
    assert_eq!(inner::generic(&"g"), "g");
    assert_eq!(inner::Wrap(9).get(), 9);
}

#[test]
fn panics_unwind_to_the_caller_with_their_payload() {
    let err = std::panic::catch_unwind(|| panics(true)).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"from hot code"));
    assert_eq!(panics(false), 0);
}

#[test]
fn every_hot_function_is_in_the_table_and_generic_ones_are_not() {
    const { assert!(hotreload::__rt::HOT) };
    let ids: Vec<&str> = hotreload::__rt::hot_fns().iter().map(|e| e.id()).collect();
    for id in [
        "expand::plain",
        "expand::patterns",
        "expand::Point::new",
        "expand::Point::boxed",
        "expand::Square~Shape::area",
        "expand::inner::double",
        "expand::inner::Wrap::get",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(!ids.iter().any(|id| id.ends_with("::generic") || id.ends_with("::constant")), "{ids:?}");
}
