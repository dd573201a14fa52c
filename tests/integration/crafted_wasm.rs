//! Hand-encoded WebAssembly for attacks that no plugin compiled from Rust
//! makes: components with many core instances, memories and tables, and
//! modules that are cheap to write and expensive to compile.
//!
//! A component is a header and a list of sections that may come in any order,
//! so a working plugin can be extended by appending sections to its bytes:
//! an appended core module is compiled with the rest, and an appended core
//! instance section is instantiated with the rest (after the plugin's own).

/// The header of a component (layer 1, version 0x0d).
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";
/// The header of a core module (version 1).
const MODULE_HEADER: &[u8] = b"\0asm\x01\0\0\0";

/// Component section ids.
const CORE_MODULE_SECTION: u8 = 1;
const CORE_INSTANCE_SECTION: u8 = 2;

/// Core module section ids.
const TYPE: u8 = 1;
const FUNCTION: u8 = 3;
const TABLE: u8 = 4;
const MEMORY: u8 = 5;
const START: u8 = 8;
const CODE: u8 = 10;

/// A Wasm page: 64 KiB.
pub const PAGE: u64 = 64 << 10;

fn uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        let done = (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

fn section(id: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    uleb(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A vector: its length, then its items.
fn vector(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    uleb(items.len() as u64, &mut out);
    items.iter().for_each(|item| out.extend_from_slice(item));
    out
}

/// A module with one function of type `() -> ()`: `locals` (count, value
/// type) and `body` (its instructions, without the final `end`); `extra`
/// sections go between the function and code sections, in id order.
fn module_with_function(locals: &[(u32, u8)], body: &[u8], extra: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = MODULE_HEADER.to_vec();
    section(TYPE, &vector(&[vec![0x60, 0x00, 0x00]]), &mut out);
    section(FUNCTION, &vector(&[vec![0x00]]), &mut out);
    for (id, payload) in extra {
        section(*id, payload, &mut out);
    }
    let mut function = Vec::new();
    uleb(locals.len() as u64, &mut function);
    for (count, ty) in locals {
        uleb(u64::from(*count), &mut function);
        function.push(*ty);
    }
    function.extend_from_slice(body);
    function.push(0x0b); // end
    let mut code = Vec::new();
    uleb(function.len() as u64, &mut code);
    code.extend_from_slice(&function);
    section(CODE, &vector(&[code]), &mut out);
    out
}

/// A module with one memory of `pages` pages and a start function that writes
/// a byte to every 4 KiB of it, so the memory costs its full size in resident
/// pages as soon as the module is instantiated.
pub fn memory_toucher(pages: u32) -> Vec<u8> {
    let end = i64::from(pages) * PAGE as i64;
    let mut body = vec![0x03, 0x40]; // loop
    body.extend([0x20, 0x00, 0x41, 0x01, 0x3a, 0x00, 0x00]); // local.get 0; i32.const 1; i32.store8
    body.extend([0x20, 0x00, 0x41]); // local.get 0; i32.const 4096
    sleb(4096, &mut body);
    body.extend([0x6a, 0x22, 0x00, 0x41]); // i32.add; local.tee 0; i32.const end
    sleb(end, &mut body);
    body.extend([0x49, 0x0d, 0x00, 0x0b]); // i32.lt_u; br_if 0; end (loop)
    let mut memory = vec![0x00]; // limits: a minimum only
    uleb(u64::from(pages), &mut memory);
    let mut start = Vec::new();
    uleb(0, &mut start);
    // Extra sections in id order: memory (5), then start (8).
    module_with_function(&[(1, 0x7f)], &body, &[(MEMORY, vector(&[memory])), (START, start)])
}

/// A module with one funcref table of `elements` elements.
pub fn table_holder(elements: u32) -> Vec<u8> {
    let mut table = vec![0x70, 0x00]; // funcref, limits: a minimum only
    uleb(u64::from(elements), &mut table);
    module_with_function(&[], &[], &[(TABLE, vector(&[table]))])
}

/// A module whose one function nests `depth` blocks, each holding a
/// conditional branch out of it: under a megabyte at a depth of 100,000, and
/// Cranelift's compile time grows with the square of the depth (about a
/// minute at that depth in a debug build, four times that at twice the depth).
pub fn nested_blocks(depth: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth as usize * 7);
    for _ in 0..depth {
        // block; local.get 0; i32.eqz; br_if 0
        body.extend([0x02, 0x40, 0x20, 0x00, 0x45, 0x0d, 0x00]);
    }
    body.extend(std::iter::repeat_n(0x0b, depth as usize));
    module_with_function(&[(1, 0x7f)], &body, &[])
}

/// A module whose one function pushes `values` copies of a local and adds
/// them up: three bytes of input per value, and every value is live at once,
/// so the compiler holds them all (about 200 MB for two million values).
pub fn wide_stack(values: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(values as usize * 3 + 1);
    body.extend(std::iter::repeat_n([0x20, 0x00], values as usize).flatten()); // local.get 0
    body.extend(std::iter::repeat_n(0x7c, values.saturating_sub(1) as usize)); // i64.add
    body.push(0x1a); // drop
    module_with_function(&[(1, 0x7e)], &body, &[])
}

/// The top-level sections of a component: (id, payload).
fn sections(component: &[u8]) -> Vec<(u8, &[u8])> {
    assert!(component.starts_with(COMPONENT_HEADER), "not a component");
    let mut sections = Vec::new();
    let mut at = COMPONENT_HEADER.len();
    while at < component.len() {
        let id = component[at];
        at += 1;
        let (mut size, mut shift) = (0u64, 0);
        loop {
            let byte = component[at];
            at += 1;
            size |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        sections.push((id, &component[at..at + size as usize]));
        at += size as usize;
    }
    sections
}

/// `component` with `module` appended as a core module, and `instances`
/// instances of it appended after every other section. (A component made by
/// `wit-component` defines its core modules in module sections only, so
/// their count is the new module's index.)
pub fn with_instances(component: &[u8], module: &[u8], instances: u32) -> Vec<u8> {
    let index = sections(component).iter().filter(|(id, _)| *id == CORE_MODULE_SECTION).count() as u64;
    let mut out = component.to_vec();
    section(CORE_MODULE_SECTION, module, &mut out);
    let mut instance = vec![0x00]; // instantiate
    uleb(index, &mut instance);
    instance.push(0x00); // with no arguments
    section(CORE_INSTANCE_SECTION, &vector(&vec![instance; instances as usize]), &mut out);
    out
}

/// `component` with `module` appended as a core module that nothing
/// instantiates: it is compiled with the rest, and never runs.
pub fn with_module(component: &[u8], module: &[u8]) -> Vec<u8> {
    let mut out = component.to_vec();
    section(CORE_MODULE_SECTION, module, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_encodes_as_the_spec_says() {
        let enc = |n: i64| {
            let mut out = Vec::new();
            sleb(n, &mut out);
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(64), [0xc0, 0x00]);
        assert_eq!(enc(-1), [0x7f]);
        assert_eq!(enc(4096), [0x80, 0x20]);
        let mut out = Vec::new();
        uleb(624_485, &mut out);
        assert_eq!(out, [0xe5, 0x8e, 0x26]);
    }

    #[test]
    fn appended_sections_are_found_again() {
        let base = COMPONENT_HEADER.to_vec();
        let component = with_instances(&with_module(&base, &table_holder(1)), &memory_toucher(1), 3);
        let ids: Vec<u8> = sections(&component).iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [CORE_MODULE_SECTION, CORE_MODULE_SECTION, CORE_INSTANCE_SECTION]);
        // Three instances of module 1 (the second module).
        assert_eq!(sections(&component)[2].1, [3, 0, 1, 0, 0, 1, 0, 0, 1, 0]);
    }
}
