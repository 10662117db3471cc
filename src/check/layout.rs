//! Type layouts read from DWARF: how the running program lays out its types in
//! memory, and how a patch's new code thinks they are laid out.
//!
//! The program holds values built by old code — a `Vec<Row>` made at start-up, a
//! `World` behind a `&mut` — and hands them to new code. If the edit changed the size,
//! alignment or a field's offset or type of any type that new code shares with the
//! program (through a `const` array length, a const-generic argument, an alias, a
//! nested type, a `#[repr]`, a `cfg`), new code would read and write through the wrong
//! layout. The source comparison cannot see all of those, so both sides are compared
//! as compiled: every named type the patch's debug info describes that the program's
//! also describes must have the same [`Shape`], and every hot function's forwarder
//! (the entry old code calls through a slot) the same parameter and return types. A mismatch is a
//! [`Mismatch`] naming the type; the patch is refused before anything is loaded.
//!
//! Compared by name: generic instances by their full name (`alloc::vec::Vec<logic::Row,
//! alloc::alloc::Global>`), so an instance whose arguments changed is a new type,
//! caught where it is used (the field or parameter that holds it changes type).
//! Closure and `async` environments (`{closure_env#0}`, `{async_fn_env#0}`) are compared
//! when changed functions are redirected at their entries, since a closure made
//! before the edit then runs the new code on its old environment; through slots alone,
//! old values of them only ever run old code, and they are left out.

use anyhow::{Context, Result};
use gimli::{constants, AttributeValue, EndianSlice, LittleEndian, RelocateReader, UnitOffset};
use hotreload_protocol::record::FORWARDER_PREFIX;
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// What one side's debug info says about its types and hot forwarders.
#[derive(Debug, Default)]
pub struct Layouts {
    /// Every distinct shape of each named type (two semver-incompatible versions of
    /// one crate may share a path), by qualified name.
    types: HashMap<String, Vec<Shape>>,
    /// The parameter and return types of each hot function's forwarder (the entry old
    /// code calls through a slot), by its export name.
    functions: HashMap<String, String>,
    /// Compilation units read: none when built without debug info.
    units: usize,
}

/// A type's layout: size and alignment in bytes, and one line per field, variant
/// field or enumerator (`cells@4: [u32; 4]`, `variant 1: __0@8: u64`, `Red=0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// `DW_AT_byte_size`, in bytes.
    pub size: Option<u64>,
    /// `DW_AT_alignment`, in bytes.
    pub align: Option<u64>,
    /// The fields in declaration order.
    pub fields: Vec<String>,
}

/// A type or hot function whose layout or signature differs between the program and a patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The type's qualified name, or the function's id.
    pub item: String,
    /// What differs, for a person.
    pub reason: String,
}

impl Layouts {
    /// Reads an executable or shared library (relocations already applied).
    ///
    /// # Errors
    /// The file cannot be read or parsed as an object file, or its DWARF is malformed.
    pub fn read_file(path: &Path) -> Result<Layouts> {
        let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        let mut layouts = Layouts::default();
        layouts.add_object(&data).with_context(|| format!("failed to read the debug info of {}", path.display()))?;
        Ok(layouts)
    }

    /// Reads every object file of an rlib (each codegen unit has its own DWARF, with
    /// relocations still to apply), into one.
    #[cfg(test)]
    fn read_rlib(path: &Path) -> Result<Layouts> {
        let mut layouts = Layouts::default();
        for object in crate::build::rlib::objects(path)? {
            layouts
                .add_object(object.bytes())
                .with_context(|| format!("failed to read the debug info of {}", path.display()))?;
        }
        Ok(layouts)
    }

    /// Whether there was no debug info at all (a build without `-C debuginfo`).
    pub fn is_empty(&self) -> bool {
        self.units == 0
    }

    /// How many distinct named types were read.
    pub fn type_count(&self) -> usize {
        self.types.len()
    }

    /// What in `self` (a patch) disagrees with `program`. Types and functions only one
    /// side has are not compared: new ones are the patch's own, and ones the patch does
    /// not describe are ones its code never touches.
    /// With `environments`, closure and `async` environments are compared too.
    pub fn mismatches(&self, program: &Layouts, environments: bool) -> Vec<Mismatch> {
        let mut found = self.each_mismatch(program, environments);
        found.sort_by(|a, b| a.item.cmp(&b.item));
        outermost(found)
    }

    /// [`Layouts::mismatches`] before they are sorted and trimmed to the outermost
    /// types: what one object finds, to be joined with the others'.
    fn each_mismatch(&self, program: &Layouts, environments: bool) -> Vec<Mismatch> {
        let mut found = Vec::new();
        for (name, shapes) in &self.types {
            if name.contains('{') && !environments {
                continue;
            }
            let Some(old) = program.types.get(name) else { continue };
            if let Some(new) = shapes.iter().find(|s| !old.iter().any(|o| agree(o, s))) {
                found.push(Mismatch { item: name.clone(), reason: explain(&old[0], new) });
            }
        }
        for (name, signature) in &self.functions {
            match program.functions.get(name) {
                Some(old) if old != signature => found.push(Mismatch {
                    item: function_id(name),
                    reason: format!("its parameter or return types changed, from `{old}` to `{signature}`"),
                }),
                _ => {}
            }
        }
        found
    }

    fn add_object(&mut self, data: &[u8]) -> Result<()> {
        let file = object::File::parse(data)?;
        let sections = gimli::DwarfSections::load(|id| load_section(&file, id))?;
        let dwarf = sections.borrow(|(data, relocations)| {
            RelocateReader::new(EndianSlice::new(data, LittleEndian), Relocations(relocations))
        });
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            self.units += 1;
            UnitReader { dwarf: &dwarf, unit: &unit, names: HashMap::new() }.read(self)?;
        }
        Ok(())
    }

    fn add_type(&mut self, name: String, shape: Shape) {
        let shapes = self.types.entry(name).or_default();
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
}

/// The running program's [`Layouts`], read on a thread of their own when the program
/// starts (a debug program of 10 MB takes ~50 ms in a release build of the tool) and
/// waited for by the first patch that needs them; and what patches' objects were found
/// to disagree with them.
#[derive(Default)]
pub struct ProgramLayouts {
    reading: Option<std::thread::JoinHandle<Result<Layouts, String>>>,
    read: Option<std::sync::Arc<Result<Layouts, String>>>,
    /// For the last patch checked of each rlib (by path), by an object's content hash
    /// and whether environments were compared: what it holds (see
    /// [`ProgramLayouts::check_rlib`]).
    checked: HashMap<std::path::PathBuf, HashMap<(u64, bool), std::sync::Arc<ObjectCheck>>>,
}

/// What comparing one object file of a patch with the program found.
#[derive(Debug)]
struct ObjectCheck {
    /// Compilation units read.
    units: usize,
    /// Its disagreements, untrimmed ([`Layouts::each_mismatch`]).
    found: Vec<Mismatch>,
}

/// What [`ProgramLayouts::check_rlib`] found in a patch's rlib.
#[derive(Debug)]
pub struct RlibCheck {
    /// Compilation units in all its objects: none when built without debug info.
    pub units: usize,
    /// Its objects.
    pub objects: usize,
    /// How many of its objects were read (the others were compared before).
    pub read: usize,
    /// What disagrees with the program, as [`Layouts::mismatches`] says it.
    pub mismatches: Vec<Mismatch>,
}

impl ProgramLayouts {
    /// Starts reading `executable`.
    pub fn read(executable: &Path) -> ProgramLayouts {
        let executable = executable.to_path_buf();
        let reading = std::thread::Builder::new()
            .name("layouts".into())
            .spawn(move || Layouts::read_file(&executable).map_err(|e| format!("{e:#}")))
            .ok();
        ProgramLayouts { reading, read: None, checked: HashMap::new() }
    }

    /// Compares the debug info of every object of the patch rlib at `path` with the
    /// program's (`program`, from [`ProgramLayouts::get`]). An object with the same
    /// bytes as one of the last patch checked is not read again: with incremental
    /// compilation most codegen units of a patch are the last one's, byte for byte, and
    /// reading their DWARF was most of the check (0.4–0.5 s a patch on tokio-rs/mini-
    /// redis). Those not compared before are read on two threads (rustc has finished).
    ///
    /// # Errors
    /// The rlib cannot be read, or an object's DWARF is malformed.
    pub fn check_rlib(&mut self, program: &Layouts, path: &Path, environments: bool) -> Result<RlibCheck> {
        use std::hash::{Hash, Hasher};
        let objects = crate::build::rlib::objects(path)?;
        let keys: Vec<(u64, bool)> = objects
            .iter()
            .map(|o| {
                let mut hasher = std::hash::DefaultHasher::new();
                o.bytes().hash(&mut hasher);
                (hasher.finish(), environments)
            })
            .collect();
        let before = self.checked.remove(path).unwrap_or_default();
        let unread: Vec<usize> = (0..objects.len()).filter(|&i| !before.contains_key(&keys[i])).collect();
        let read_one = |i: usize| -> Result<(usize, ObjectCheck)> {
            let mut layouts = Layouts::default();
            layouts.add_object(objects[i].bytes()).with_context(|| {
                format!("failed to read the debug info of {} in {}", objects[i].name, path.display())
            })?;
            let found = layouts.each_mismatch(program, environments);
            Ok((i, ObjectCheck { units: layouts.units, found }))
        };
        let read: Vec<Result<(usize, ObjectCheck)>> = std::thread::scope(|scope| {
            let halves: Vec<_> = unread
                .chunks(unread.len().div_ceil(2).max(1))
                .map(|half| scope.spawn(|| half.iter().map(|&i| read_one(i)).collect::<Vec<_>>()))
                .collect();
            halves
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|_| vec![Err(anyhow::anyhow!("reading debug info panicked"))]))
                .collect()
        });
        let mut fresh = HashMap::new();
        for result in read {
            let (i, check) = result?;
            fresh.insert(keys[i], std::sync::Arc::new(check));
        }
        // Only this patch's objects are kept: the next patch shares most of them.
        let mut kept = HashMap::new();
        let (mut units, mut found) = (0, Vec::new());
        for key in &keys {
            let check = fresh.get(key).or_else(|| before.get(key)).expect("read or kept").clone();
            units += check.units;
            found.extend(check.found.iter().cloned());
            kept.insert(*key, check);
        }
        self.checked.insert(path.to_path_buf(), kept);
        found.sort_by(|a, b| a.item.cmp(&b.item));
        found.dedup_by(|a, b| a.item == b.item);
        Ok(RlibCheck { units, objects: objects.len(), read: unread.len(), mismatches: outermost(found) })
    }

    /// The layouts, once read; or why they could not be.
    pub fn get(&mut self) -> std::sync::Arc<Result<Layouts, String>> {
        if let Some(reading) = self.reading.take() {
            let read = reading.join().unwrap_or_else(|_| Err("reading the program's debug info panicked".into()));
            self.read = Some(std::sync::Arc::new(read));
        }
        self.read.clone().unwrap_or_else(|| std::sync::Arc::new(Err("the program is not built".into())))
    }
}

/// The hot function id of a forwarder's export name, else the name itself.
fn function_id(name: &str) -> String {
    name.strip_prefix(hotreload_protocol::record::FORWARDER_PREFIX).unwrap_or(name).to_string()
}

/// Why `new` is not `old`, in a few words.
fn explain(old: &Shape, new: &Shape) -> String {
    let bytes = |n: Option<u64>| n.map_or("?".to_string(), |n| n.to_string());
    if old.size != new.size {
        return format!("its layout changed (size {} → {} bytes)", bytes(old.size), bytes(new.size));
    }
    if old.align != new.align {
        return format!("its layout changed (alignment {} → {} bytes)", bytes(old.align), bytes(new.align));
    }
    let differs = old.fields.iter().zip(&new.fields).find(|(a, b)| a != b);
    match differs {
        Some((a, b)) => format!("its layout changed (`{a}` is now `{b}`)"),
        None => format!("its layout changed ({} fields → {})", old.fields.len(), new.fields.len()),
    }
}

type Reader<'a> = RelocateReader<EndianSlice<'a, LittleEndian>, Relocations<'a>>;

/// An object file's relocations of one DWARF section (none in a linked file).
#[derive(Clone, Copy, Debug)]
struct Relocations<'a>(&'a object::read::RelocationMap);

impl gimli::read::Relocate for Relocations<'_> {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        Ok(self.0.relocate(offset as u64, value))
    }

    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        usize::try_from(self.0.relocate(offset as u64, value as u64)).map_err(|_| gimli::Error::OffsetOutOfBounds)
    }
}

fn load_section<'a>(
    file: &object::File<'a>,
    id: gimli::SectionId,
) -> Result<(Cow<'a, [u8]>, object::read::RelocationMap)> {
    let Some(section) = file.section_by_name(id.name()) else { return Ok((Cow::Borrowed(&[]), Default::default())) };
    let mut relocations = object::read::RelocationMap::default();
    for (offset, relocation) in section.relocations() {
        // Only absolute relocations matter to names, sizes and offsets; the others
        // (`R_X86_64_DTPOFF32` of a thread-local's location) are left unapplied.
        let _ = relocations.add(file, offset, relocation);
    }
    Ok((section.uncompressed_data()?, relocations))
}

/// Reads one compilation unit into [`Layouts`].
struct UnitReader<'d, 'a> {
    dwarf: &'d gimli::Dwarf<Reader<'a>>,
    unit: &'d gimli::Unit<Reader<'a>>,
    /// Qualified names of the unit's named entries, by offset.
    names: HashMap<UnitOffset, String>,
}

/// Entries found by [`UnitReader::walk`], read once every name is known.
#[derive(Default)]
struct Found {
    types: Vec<(UnitOffset, String)>,
    functions: Vec<(UnitOffset, String)>,
}

impl UnitReader<'_, '_> {
    fn read(mut self, out: &mut Layouts) -> gimli::Result<()> {
        let mut found = Found::default();
        let mut tree = self.unit.entries_tree(None)?;
        self.walk(tree.root()?, &mut Vec::new(), &mut found)?;
        for (offset, name) in found.types {
            let shape = self.shape(offset)?;
            out.add_type(name, shape);
        }
        for (offset, name) in found.functions {
            let signature = self.signature(offset)?;
            out.functions.insert(name, signature);
        }
        Ok(())
    }

    /// Names every type below `node`; finds the types to lay out and the hot
    /// forwarders. Function bodies are skipped.
    fn walk(
        &mut self,
        node: gimli::EntriesTreeNode<'_, '_, '_, Reader<'_>>,
        path: &mut Vec<String>,
        found: &mut Found,
    ) -> gimli::Result<()> {
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let entry = child.entry();
            let offset = entry.offset();
            let name = self.string(entry, constants::DW_AT_name)?;
            match entry.tag() {
                constants::DW_TAG_namespace => {
                    path.push(name.unwrap_or_default());
                    self.walk(child, path, found)?;
                    path.pop();
                }
                constants::DW_TAG_structure_type
                | constants::DW_TAG_union_type
                | constants::DW_TAG_enumeration_type => {
                    let Some(name) = name else { continue };
                    let qualified = qualify(path, &name);
                    self.names.insert(offset, qualified.clone());
                    if entry.attr_value(constants::DW_AT_declaration)?.is_none() {
                        found.types.push((offset, qualified));
                    }
                    path.push(name);
                    self.walk(child, path, found)?;
                    path.pop();
                }
                constants::DW_TAG_subprogram => {
                    let linkage = self.string(entry, constants::DW_AT_linkage_name)?;
                    if let Some(linkage) = linkage.filter(|l| l.starts_with(FORWARDER_PREFIX)) {
                        found.functions.push((offset, linkage));
                    }
                }
                _ => {
                    if let Some(name) = name {
                        self.names.insert(offset, qualify(path, &name));
                    }
                }
            }
        }
        Ok(())
    }

    fn shape(&self, offset: UnitOffset) -> gimli::Result<Shape> {
        let mut tree = self.unit.entries_tree(Some(offset))?;
        let root = tree.root()?;
        let entry = root.entry();
        let size = entry.attr_value(constants::DW_AT_byte_size)?.and_then(|v| v.udata_value());
        let align = entry.attr_value(constants::DW_AT_alignment)?.and_then(|v| v.udata_value());
        let mut fields = Vec::new();
        let mut children = root.children();
        while let Some(child) = children.next()? {
            match child.entry().tag() {
                constants::DW_TAG_member => fields.push(self.member(child.entry())?),
                constants::DW_TAG_enumerator => {
                    let name = self.string(child.entry(), constants::DW_AT_name)?.unwrap_or_default();
                    let value = child.entry().attr_value(constants::DW_AT_const_value)?;
                    fields.push(format!("{name}={}", constant(value)));
                }
                constants::DW_TAG_variant_part => self.variants(child, &mut fields)?,
                _ => {}
            }
        }
        Ok(Shape { size, align, fields })
    }

    /// The discriminant and each variant's fields of a Rust enum.
    fn variants(
        &self,
        part: gimli::EntriesTreeNode<'_, '_, '_, Reader<'_>>,
        fields: &mut Vec<String>,
    ) -> gimli::Result<()> {
        let mut children = part.children();
        while let Some(child) = children.next()? {
            match child.entry().tag() {
                constants::DW_TAG_member => fields.push(format!("discriminant {}", self.member(child.entry())?)),
                constants::DW_TAG_variant => {
                    let value = constant(child.entry().attr_value(constants::DW_AT_discr_value)?);
                    let mut members = child.children();
                    while let Some(member) = members.next()? {
                        if member.entry().tag() == constants::DW_TAG_member {
                            fields.push(format!("variant {value}: {}", self.member(member.entry())?));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `name@offset: type`
    fn member(&self, entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>) -> gimli::Result<String> {
        let name = self.string(entry, constants::DW_AT_name)?.unwrap_or_default();
        let offset = entry.attr_value(constants::DW_AT_data_member_location)?.and_then(|v| v.udata_value());
        let ty = self.type_of(entry)?;
        let align = entry.attr_value(constants::DW_AT_alignment)?.and_then(|v| v.udata_value());
        let align = align.map(|a| format!(" align {a}")).unwrap_or_default();
        Ok(format!("{name}@{}: {ty}{align}", offset.map_or("?".into(), |o| o.to_string())))
    }

    /// `(param, param) -> return` of a function.
    fn signature(&self, offset: UnitOffset) -> gimli::Result<String> {
        let mut tree = self.unit.entries_tree(Some(offset))?;
        let root = tree.root()?;
        let returns = self.type_of(root.entry())?;
        let mut params = Vec::new();
        let mut children = root.children();
        while let Some(child) = children.next()? {
            if child.entry().tag() == constants::DW_TAG_formal_parameter {
                params.push(self.type_of(child.entry())?);
            }
        }
        Ok(format!("({}) -> {returns}", params.join(", ")))
    }

    /// The name of the type an entry's `DW_AT_type` refers to (`()` without one).
    fn type_of(&self, entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>) -> gimli::Result<String> {
        match entry.attr_value(constants::DW_AT_type)? {
            Some(AttributeValue::UnitRef(offset)) => self.describe(offset, 0),
            Some(_) => Ok("?".into()),
            None => Ok("()".into()),
        }
    }

    /// A type by name, or for an unnamed one (an array, a bare pointer) by what it is made of.
    fn describe(&self, offset: UnitOffset, depth: u32) -> gimli::Result<String> {
        if let Some(name) = self.names.get(&offset) {
            return Ok(name.clone());
        }
        if depth > 8 {
            return Ok("…".into());
        }
        let mut tree = self.unit.entries_tree(Some(offset))?;
        let root = tree.root()?;
        let entry = root.entry();
        if let Some(name) = self.string(entry, constants::DW_AT_name)? {
            return Ok(name);
        }
        let inner = match entry.attr_value(constants::DW_AT_type)? {
            Some(AttributeValue::UnitRef(inner)) => self.describe(inner, depth + 1)?,
            _ => "()".into(),
        };
        Ok(match entry.tag() {
            constants::DW_TAG_array_type => {
                let mut lengths = Vec::new();
                let mut children = root.children();
                while let Some(child) = children.next()? {
                    let e = child.entry();
                    let count = e.attr_value(constants::DW_AT_count)?.and_then(|v| v.udata_value());
                    let upper = e.attr_value(constants::DW_AT_upper_bound)?.and_then(|v| v.udata_value());
                    lengths.push(count.or(upper.map(|u| u + 1)).map_or("?".into(), |n| n.to_string()));
                }
                format!("[{inner}; {}]", lengths.join(", "))
            }
            constants::DW_TAG_pointer_type | constants::DW_TAG_reference_type => format!("*{inner}"),
            constants::DW_TAG_subroutine_type => format!("fn -> {inner}"),
            tag => format!("{tag} {inner}"),
        })
    }

    fn string(
        &self,
        entry: &gimli::DebuggingInformationEntry<'_, '_, Reader<'_>>,
        at: constants::DwAt,
    ) -> gimli::Result<Option<String>> {
        let Some(value) = entry.attr_value(at)? else { return Ok(None) };
        let text = self.dwarf.attr_string(self.unit, value)?;
        Ok(Some(String::from_utf8_lossy(gimli::Reader::to_slice(&text)?.as_ref()).into_owned()))
    }
}

fn qualify(path: &[String], name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{}::{name}", path.join("::"))
    }
}

fn constant(value: Option<AttributeValue<Reader<'_>>>) -> String {
    match value {
        Some(AttributeValue::Sdata(v)) => v.to_string(),
        Some(v) => v.udata_value().map_or("?".into(), |v| v.to_string()),
        None => "?".into(),
    }
}

/// Whether two shapes agree. A field type one side could not name (`?`: a reference
/// into another unit, which optimised builds make) agrees with any, and so do a
/// pointer to nothing named (`*()`: optimised builds describe a slice's `data_ptr`
/// so in some units) with any pointer, and an array of nothing named (`[(); 1]`, as
/// they describe an array of a dependency's type) with any array of as many elements:
/// its offset, the size of the whole and the other fields still decide (a pointee's or
/// element's own layout is compared where the program holds it).
fn agree(a: &Shape, b: &Shape) -> bool {
    let parts = |field: &str| {
        let (head, rest) = field.split_once(": ").unwrap_or((field, ""));
        let (ty, align) = rest.split_once(" align ").unwrap_or((rest, ""));
        (head.to_string(), ty.to_string(), align.to_string())
    };
    let fields_agree = |x: &String, y: &String| {
        let ((xh, xt, xa), (yh, yt, ya)) = (parts(x), parts(y));
        let untyped_pointer = |t: &str, other: &str| t == "*()" && other.starts_with('*');
        let untyped_array = |t: &str, other: &str| {
            let count = |t: &str| t.strip_suffix(']').and_then(|t| t.rsplit_once("; ")).map(|(_, n)| n.to_string());
            t.starts_with("[(); ") && other.starts_with('[') && count(t).is_some() && count(t) == count(other)
        };
        let untyped = |t: &str, other: &str| t == "?" || untyped_pointer(t, other) || untyped_array(t, other);
        x == y || xh == yh && xa == ya && (untyped(&xt, &yt) || untyped(&yt, &xt))
    };
    a.size == b.size
        && a.align == b.align
        && a.fields.len() == b.fields.len()
        && a.fields.iter().zip(&b.fields).all(|(x, y)| fields_agree(x, y))
}

/// Of mismatches sorted by item, those not inside another one: an `async` body's
/// environment changed is one change, not one more per state it can be in
/// (`{async_fn_env#0}::Suspend0`, `::Returned`, …).
///
/// Nor those whose generic arguments name another mismatched type: std's wrappers of a
/// changed type (`ManuallyDrop<logic::Item>`, `MaybeUninit<[logic::Item; 2]>`) change
/// with it, and naming each said one change seven times.
fn outermost(sorted: Vec<Mismatch>) -> Vec<Mismatch> {
    let mut kept: Vec<Mismatch> = Vec::with_capacity(sorted.len());
    for m in sorted {
        if !kept.iter().any(|k| m.item.starts_with(&format!("{}::", k.item))) {
            kept.push(m);
        }
    }
    let wraps = |m: &Mismatch, k: &Mismatch| {
        let Some((_, args)) = m.item.split_once('<') else { return false };
        m.item != k.item && !k.item.contains('<') && contains_path(args, &k.item)
    };
    let all = kept.clone();
    kept.retain(|m| !all.iter().any(|k| wraps(m, k)));
    kept
}

/// Whether `text` names type `path` whole (not `logic::Items` for `logic::Item`).
fn contains_path(text: &str, path: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    text.match_indices(path).any(|(at, _)| {
        let before = text[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[at + path.len()..].chars().next().is_none_or(|c| !ident(c));
        before && after
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_type_one_side_cannot_name_agrees_but_its_offset_still_counts() {
        let shape = |fields: &[&str]| Shape {
            size: Some(16),
            align: Some(8),
            fields: fields.iter().map(|f| f.to_string()).collect(),
        };
        assert!(agree(&shape(&["__0@0: ? align 8"]), &shape(&["__0@0: usize align 8"])));
        assert!(!agree(&shape(&["__0@0: ? align 8"]), &shape(&["__0@8: usize align 8"])));
        assert!(!agree(&shape(&["__0@0: u32 align 8"]), &shape(&["__0@0: usize align 8"])));
        // A trial's `--release` session refused a body edit over a slice's data pointer.
        let boxed = "data_ptr@0: *alloc::boxed::Box<dyn core::ops::function::FnOnce<(), Output=()>> align 8";
        assert!(agree(&shape(&["data_ptr@0: *() align 8"]), &shape(&[boxed])));
        assert!(!agree(&shape(&["data_ptr@0: *() align 8"]), &shape(&["data_ptr@0: usize align 8"])));
        assert!(!agree(&shape(&["data_ptr@0: *() align 8"]), &shape(&["data_ptr@8: *u8 align 8"])));
        // A second trial's: an array of a dependency's type, described as of `()`.
        let headers = "__0@0: [(http::header::name::HeaderName, http::header::value::HeaderValue); 1] align 8";
        assert!(agree(&shape(&["__0@0: [(); 1] align 8"]), &shape(&[headers])));
        assert!(agree(&shape(&[headers]), &shape(&["__0@0: [(); 1] align 8"])));
        assert!(!agree(&shape(&["__0@0: [(); 2] align 8"]), &shape(&[headers])));
        assert!(!agree(&shape(&["__0@0: [(); 1] align 8"]), &shape(&["__0@0: usize align 8"])));
    }

    #[test]
    fn a_change_inside_a_changed_environment_is_not_said_again() {
        let m = |item: &str| Mismatch { item: item.into(), reason: "its layout changed".into() };
        let found =
            ["a::f::{async_fn_env#0}", "a::f::{async_fn_env#0}::Returned", "a::f::{async_fn_env#0}::Suspend0", "a::g"];
        let kept: Vec<String> = outermost(found.map(m).to_vec()).into_iter().map(|m| m.item).collect();
        assert_eq!(kept, ["a::f::{async_fn_env#0}", "a::g"]);
        let wrappers = [
            "core::mem::manually_drop::ManuallyDrop<shop::Item>",
            "core::mem::maybe_uninit::MaybeUninit<[shop::Item; 2]>",
            "shop::Item",
            "shop::Items",
            "std::vec::Vec<shop::Items>",
        ];
        let kept: Vec<String> = outermost(wrappers.map(m).to_vec()).into_iter().map(|m| m.item).collect();
        assert_eq!(kept, ["shop::Item", "shop::Items"]);
    }

    /// Compiles `source` as rlib `loc` with debug info, in `dir` (its incremental
    /// cache there too, as patches are built).
    fn compile(dir: &Path, source: &str) -> std::path::PathBuf {
        std::fs::write(dir.join("loc.rs"), source).unwrap();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let status = std::process::Command::new(rustc)
            .args(["--edition", "2021", "--crate-type", "rlib", "-C", "debuginfo=2", "-C", "incremental=inc", "loc.rs"])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir.join("libloc.rlib")
    }

    /// A patch's objects the last check read are not read again, and the answer is
    /// the same; a changed layout is still found.
    #[test]
    fn objects_compared_before_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let source = "pub struct Row { pub tag: u32, pub cells: [u32; 4] }\n\
                      pub fn stamp(r: &mut Row) { r.cells[3] = r.tag; }\n\
                      pub mod other { pub struct Keep { pub n: u64 } pub fn keep(k: &Keep) -> u64 { k.n } }\n";
        let rlib = compile(dir.path(), source);
        let program = Layouts::read_rlib(&rlib).unwrap();
        let mut checks = ProgramLayouts::default();
        let first = checks.check_rlib(&program, &rlib, true).unwrap();
        assert!(first.units > 0 && first.mismatches.is_empty(), "{first:?}");
        assert_eq!(first.read, first.objects);
        let again = checks.check_rlib(&program, &rlib, true).unwrap();
        assert_eq!((again.read, again.units, again.mismatches.len()), (0, first.units, 0), "{again:?}");
        let rlib = compile(dir.path(), &source.replace("[u32; 4]", "[u32; 8]"));
        let changed = checks.check_rlib(&program, &rlib, true).unwrap();
        assert!(changed.read > 0, "{changed:?}");
        assert_eq!(changed.mismatches.len(), 1, "{changed:?}");
        assert_eq!(changed.mismatches[0].item, "loc::Row");
        // Environments compared or not are told apart.
        assert_eq!(checks.check_rlib(&program, &rlib, false).unwrap().read, changed.objects);
    }

    fn shape(size: u64, fields: &[&str]) -> Shape {
        Shape { size: Some(size), align: Some(4), fields: fields.iter().map(|s| s.to_string()).collect() }
    }

    fn layouts(types: &[(&str, Shape)], functions: &[(&str, &str)]) -> Layouts {
        let mut l = Layouts::default();
        for (name, s) in types {
            l.add_type(name.to_string(), s.clone());
        }
        l.functions = functions.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        l
    }

    #[test]
    fn a_changed_type_is_named_with_what_changed() {
        let program = layouts(&[("logic::Row", shape(20, &["tag@0: u32", "cells@4: [u32; 4]"]))], &[]);
        let patch = layouts(&[("logic::Row", shape(36, &["tag@0: u32", "cells@4: [u32; 8]"]))], &[]);
        let found = patch.mismatches(&program, false);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].item, "logic::Row");
        assert_eq!(found[0].reason, "its layout changed (size 20 → 36 bytes)");
        let same_size = layouts(&[("logic::Row", shape(20, &["tag@0: i32", "cells@4: [u32; 4]"]))], &[]);
        assert_eq!(
            same_size.mismatches(&program, false)[0].reason,
            "its layout changed (`tag@0: u32` is now `tag@0: i32`)"
        );
    }

    #[test]
    fn equal_new_and_closure_types_pass() {
        let program = layouts(&[("logic::Row", shape(20, &["a@0: u32"])), ("x::{closure_env#0}", shape(8, &[]))], &[]);
        let patch = layouts(
            &[
                ("logic::Row", shape(20, &["a@0: u32"])),
                ("logic::New", shape(1, &[])),
                ("x::{closure_env#0}", shape(16, &[])),
            ],
            &[],
        );
        assert!(patch.mismatches(&program, false).is_empty());
        // Redirected at their entries, a closure made before the edit would run new
        // code on its old environment: compared then.
        let found = patch.mismatches(&program, true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].item, "x::{closure_env#0}");
    }

    #[test]
    fn any_of_several_program_shapes_matches() {
        let mut program = layouts(&[("rand::Rng", shape(8, &[]))], &[]);
        program.add_type("rand::Rng".into(), shape(16, &[]));
        assert!(layouts(&[("rand::Rng", shape(16, &[]))], &[]).mismatches(&program, false).is_empty());
    }

    #[test]
    fn a_forwarder_whose_parameter_types_changed_is_named_by_id() {
        let fwd = format!("{}logic::fill", hotreload_protocol::record::FORWARDER_PREFIX);
        let program = layouts(&[], &[(&fwd, "(*Vec<[u32; 4]>) -> ()")]);
        let patch = layouts(&[], &[(&fwd, "(*Vec<[u32; 8]>) -> ()")]);
        let found = patch.mismatches(&program, false);
        assert_eq!(found[0].item, "logic::fill");
        assert!(found[0].reason.contains("[u32; 8]"), "{}", found[0].reason);
    }
}
