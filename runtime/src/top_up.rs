//! Charges the operators whose replica cost does not fit wasmtime's `u8` cost table.
//!
//! `memory.grow`, `table.grow`, `data.drop` and `elem.drop` cost 300 on the replica; the table
//! charges 255. wasmtime has no hook for `data.drop` or `elem.drop`, and its resource limiter
//! does not see a `memory.grow` by 0 pages nor one past the memory's maximum, so counting from
//! the host cannot be exact. Instead the module is rewritten once, before it is compiled: a new
//! mutable `i64` global (the counter, defined after every other global, so no index moves) and,
//! before each of those operators, `global.get $counter; i64.const TOP_UP; i64.add;
//! global.set $counter`. The bump itself costs [`cost::TOP_UP_BUMP`] in the table, so table +
//! bump + [`cost::TOP_UP`] is the replica's 300. The runtime zeroes the counter when a message
//! starts and adds it to the fuel spent.
//!
//! Everything but the global and code sections is copied byte for byte; a module without any of
//! the four operators is returned unchanged.

use std::ops::Range;

use wasmtime::wasmparser::{BinaryReaderError, Operator, Parser, Payload, TypeRef};

use crate::cost;

/// A module whose grow and drop operators bump a counter.
#[derive(Debug)]
pub(crate) struct Instrumented {
    /// The rewritten module (the input if it has none of the operators).
    pub wasm: Vec<u8>,
    /// Index of the counter global, if one was added.
    pub counter: Option<u32>,
}

/// Whether the replica charges `op` more than the cost table holds.
fn topped_up(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::MemoryGrow { .. }
            | Operator::TableGrow { .. }
            | Operator::DataDrop { .. }
            | Operator::ElemDrop { .. }
    )
}

/// Adds the counter and its bumps to `wasm` (see the module docs).
pub(crate) fn instrument(wasm: &[u8]) -> Result<Instrumented, BinaryReaderError> {
    let mut sections: Vec<(u8, Range<usize>)> = Vec::new();
    let mut globals = 0u32;
    let mut global_section: Option<(u32, Range<usize>)> = None;
    // Each body's range (without its size) and the offsets of the operators to bump before.
    let mut bodies: Vec<(Range<usize>, Vec<usize>)> = Vec::new();
    let mut found = false;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if matches!(import?.ty, TypeRef::Global(_)) {
                        globals += 1;
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                globals += reader.count();
                global_section = Some((reader.count(), reader.range()));
            }
            Payload::CodeSectionEntry(body) => {
                let mut at = Vec::new();
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    let offset = ops.original_position();
                    if topped_up(&ops.read()?) {
                        at.push(offset);
                    }
                }
                found |= !at.is_empty();
                bodies.push((body.range(), at));
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    if !found {
        return Ok(Instrumented {
            wasm: wasm.to_vec(),
            counter: None,
        });
    }
    let counter = globals;

    // The global section with the counter appended: `(global (mut i64) (i64.const 0))`.
    let mut global_contents = Vec::new();
    let old_entries = match &global_section {
        Some((count, range)) => {
            let data = &wasm[range.clone()];
            let count_len = leb_len(data);
            leb_u32(&mut global_contents, count + 1);
            &data[count_len..]
        }
        None => {
            leb_u32(&mut global_contents, 1);
            &[][..]
        }
    };
    global_contents.extend_from_slice(old_entries);
    global_contents.extend_from_slice(&[0x7e, 0x01, 0x42, 0x00, 0x0b]);

    let mut bump = vec![0x23];
    leb_u32(&mut bump, counter);
    bump.push(0x42);
    sleb_i64(&mut bump, cost::TOP_UP as i64);
    bump.extend_from_slice(&[0x7c, 0x24]);
    leb_u32(&mut bump, counter);

    let mut code_contents = Vec::new();
    leb_u32(&mut code_contents, bodies.len() as u32);
    for (range, at) in &bodies {
        let mut body = Vec::with_capacity(range.len() + at.len() * bump.len());
        let mut from = range.start;
        for &offset in at {
            body.extend_from_slice(&wasm[from..offset]);
            body.extend_from_slice(&bump);
            from = offset;
        }
        body.extend_from_slice(&wasm[from..range.end]);
        leb_u32(&mut code_contents, body.len() as u32);
        code_contents.extend_from_slice(&body);
    }

    let mut out = wasm[..8].to_vec();
    let mut global_written = false;
    for (id, range) in sections {
        if !global_written && (id == GLOBAL || (id != CUSTOM && follows_globals(id))) {
            section(&mut out, GLOBAL, &global_contents);
            global_written = true;
        }
        match id {
            GLOBAL => {}
            CODE => section(&mut out, CODE, &code_contents),
            _ => section(&mut out, id, &wasm[range]),
        }
    }
    Ok(Instrumented {
        wasm: out,
        counter: Some(counter),
    })
}

const CUSTOM: u8 = 0;
const GLOBAL: u8 = 6;
const CODE: u8 = 10;

/// Whether a section with this id comes after the global section (export, start, element, data
/// count, code, data).
fn follows_globals(id: u8) -> bool {
    (7..=12).contains(&id)
}

fn section(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    leb_u32(out, contents.len() as u32);
    out.extend_from_slice(contents);
}

/// Length of the unsigned LEB128 number at the start of `data`.
fn leb_len(data: &[u8]) -> usize {
    data.iter()
        .position(|b| b & 0x80 == 0)
        .map_or(data.len(), |i| i + 1)
}

fn leb_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb_i64(out: &mut Vec<u8>, mut value: i64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).expect("wat")
    }

    #[test]
    fn leaves_a_module_without_grow_or_drop_alone() {
        let module = wasm(r#"(module (memory 1) (func (drop (memory.size))))"#);
        let out = instrument(&module).expect("instruments");
        assert_eq!((out.wasm, out.counter), (module, None));
    }

    #[test]
    fn bumps_before_each_grow_and_drop_and_keeps_the_module_valid() {
        let module = wasm(
            r#"(module
                 (import "env" "g" (global i32))
                 (global $a (mut i32) (i32.const 1))
                 (memory 1) (table 1 funcref)
                 (data $d "x") (elem $e func $f)
                 (func $f (result i32)
                   (drop (memory.grow (i32.const 0)))
                   (drop (table.grow (ref.null func) (i32.const 1)))
                   (data.drop $d) (elem.drop $e)
                   (global.get $a))
                 (export "f" (func $f)))"#,
        );
        let out = instrument(&module).expect("instruments");
        assert_eq!(
            out.counter,
            Some(2),
            "after the imported and the defined global"
        );
        wasmtime::wasmparser::Validator::new()
            .validate_all(&out.wasm)
            .expect("valid");
        let mut bumps = 0;
        for payload in Parser::new(0).parse_all(&out.wasm) {
            if let Payload::CodeSectionEntry(body) = payload.expect("parses") {
                let ops: Vec<_> = body
                    .get_operators_reader()
                    .expect("ops")
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("ops");
                for (i, op) in ops.iter().enumerate() {
                    if topped_up(op) {
                        assert!(matches!(
                            &ops[i - 4..i],
                            [
                                Operator::GlobalGet { global_index: 2 },
                                Operator::I64Const { value },
                                Operator::I64Add,
                                Operator::GlobalSet { global_index: 2 },
                            ] if *value == cost::TOP_UP as i64
                        ));
                        bumps += 1;
                    }
                }
            }
        }
        assert_eq!(bumps, 4);
    }

    #[test]
    fn adds_a_global_section_where_there_was_none() {
        let module = wasm(r#"(module (memory 1) (func (drop (memory.grow (i32.const 1)))))"#);
        let out = instrument(&module).expect("instruments");
        assert_eq!(out.counter, Some(0));
        wasmtime::wasmparser::Validator::new()
            .validate_all(&out.wasm)
            .expect("valid");
    }
}
