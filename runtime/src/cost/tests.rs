//! Pins every operator's cost to the replica's (`instruction_to_cost` for wasm32 at the commit
//! [`REPLICA`] names): a change on either side fails here.

use super::*;

/// The replica's costs other than its default of 1, by wasmparser operator name, in the order
/// of its table.
const NOT_ONE: &[(&str, u64)] = &[
    ("Block", 0),
    ("Else", 0),
    ("End", 0),
    ("Loop", 0),
    ("I32DivS", 10),
    ("I32DivU", 10),
    ("I32RemS", 10),
    ("I32RemU", 10),
    ("I64DivS", 10),
    ("I64DivU", 10),
    ("I64RemS", 10),
    ("I64RemU", 10),
    ("F32Add", 2),
    ("F32Sub", 2),
    ("F32Mul", 2),
    ("F32Ceil", 2),
    ("F32Floor", 2),
    ("F32Trunc", 2),
    ("F32Nearest", 2),
    ("F64Add", 2),
    ("F64Sub", 2),
    ("F64Mul", 2),
    ("F64Ceil", 2),
    ("F64Floor", 2),
    ("F64Trunc", 2),
    ("F64Nearest", 2),
    ("F32Div", 3),
    ("F64Div", 5),
    ("F32Min", 18),
    ("F32Max", 18),
    ("F64Min", 18),
    ("F64Max", 18),
    ("F32Copysign", 2),
    ("F64Copysign", 3),
    ("F32Sqrt", 5),
    ("F64Sqrt", 8),
    ("F32Eq", 3),
    ("F32Ne", 3),
    ("F32Lt", 3),
    ("F32Gt", 3),
    ("F32Le", 3),
    ("F32Ge", 3),
    ("F64Eq", 3),
    ("F64Ne", 3),
    ("F64Lt", 3),
    ("F64Gt", 3),
    ("F64Le", 3),
    ("F64Ge", 3),
    ("F32ConvertI32S", 3),
    ("F64ConvertI64S", 3),
    ("F32ConvertI64S", 3),
    ("F64ConvertI32S", 3),
    ("F64ConvertI32U", 16),
    ("F32ConvertI64U", 16),
    ("F32ConvertI32U", 16),
    ("F64ConvertI64U", 16),
    ("I64TruncSatF32S", 20),
    ("I64TruncSatF32U", 20),
    ("I64TruncSatF64S", 20),
    ("I64TruncSatF64U", 20),
    ("I32TruncSatF32S", 20),
    ("I32TruncSatF32U", 20),
    ("I32TruncSatF64S", 20),
    ("I32TruncSatF64U", 20),
    ("I32TruncF32S", 20),
    ("I32TruncF32U", 20),
    ("I32TruncF64S", 20),
    ("I32TruncF64U", 20),
    ("I64TruncF32S", 20),
    ("I64TruncF32U", 20),
    ("I64TruncF64S", 20),
    ("I64TruncF64U", 20),
    ("GlobalGet", 2),
    ("GlobalSet", 2),
    ("TableGet", 5),
    ("TableSet", 5),
    ("TableGrow", 300),
    ("MemoryGrow", 300),
    ("MemorySize", 20),
    ("TableSize", 100),
    ("MemoryFill", 100),
    ("MemoryCopy", 100),
    ("TableFill", 100),
    ("TableCopy", 100),
    ("MemoryInit", 100),
    ("TableInit", 100),
    ("DataDrop", 300),
    ("ElemDrop", 300),
    ("Call", 5),
    ("CallIndirect", 10),
    ("ReturnCall", 3),
    ("ReturnCallIndirect", 60),
    ("If", 2),
    ("Br", 2),
    ("BrIf", 2),
    ("BrTable", 2),
    ("RefIsNull", 5),
    ("RefFunc", 130),
    ("I8x16Shuffle", 3),
    ("I8x16LtU", 2),
    ("I8x16GtU", 2),
    ("I16x8LtU", 2),
    ("I16x8GtU", 2),
    ("I32x4LtU", 2),
    ("I32x4GtU", 2),
    ("I8x16Popcnt", 3),
    ("I8x16Shl", 3),
    ("I8x16ShrS", 3),
    ("I8x16ShrU", 2),
    ("I16x8ExtAddPairwiseI8x16U", 2),
    ("I16x8Shl", 2),
    ("I16x8ShrS", 2),
    ("I16x8ShrU", 2),
    ("I16x8ExtMulHighI8x16S", 2),
    ("I16x8ExtMulHighI8x16U", 2),
    ("I32x4ExtAddPairwiseI16x8U", 3),
    ("I32x4Shl", 2),
    ("I32x4ShrS", 2),
    ("I32x4ShrU", 2),
    ("I32x4Mul", 2),
    ("I32x4ExtMulLowI16x8S", 2),
    ("I32x4ExtMulHighI16x8S", 2),
    ("I32x4ExtMulLowI16x8U", 2),
    ("I32x4ExtMulHighI16x8U", 2),
    ("I64x2Shl", 2),
    ("I64x2ShrS", 3),
    ("I64x2ShrU", 2),
    ("I64x2Mul", 4),
    ("F32x4Ceil", 2),
    ("F32x4Floor", 2),
    ("F32x4Trunc", 2),
    ("F32x4Nearest", 2),
    ("F32x4Abs", 2),
    ("F32x4Neg", 2),
    ("F32x4Sqrt", 5),
    ("F32x4Add", 2),
    ("F32x4Sub", 2),
    ("F32x4Mul", 2),
    ("F32x4Div", 10),
    ("F32x4Min", 4),
    ("F32x4Max", 4),
    ("F64x2Ceil", 2),
    ("F64x2Floor", 2),
    ("F64x2Trunc", 2),
    ("F64x2Nearest", 2),
    ("F64x2Abs", 2),
    ("F64x2Neg", 2),
    ("F64x2Sqrt", 14),
    ("F64x2Add", 2),
    ("F64x2Sub", 2),
    ("F64x2Mul", 2),
    ("F64x2Div", 12),
    ("F64x2Min", 4),
    ("F64x2Max", 5),
    ("I32x4TruncSatF32x4S", 2),
    ("I32x4TruncSatF32x4U", 4),
    ("F32x4ConvertI32x4U", 4),
    ("I32x4TruncSatF64x2SZero", 2),
    ("I32x4TruncSatF64x2UZero", 3),
];

/// The operators whose cost the table cannot hold, topped up by `top_up.rs`.
const TOPPED_UP: &[&str] = &["MemoryGrow", "TableGrow", "DataDrop", "ElemDrop"];

macro_rules! define_names_and_costs {
    ($( @$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*) )*) => {
        /// Every operator wasmparser knows, with its cost in `c`.
        fn names_and_costs(c: &OperatorCost) -> Vec<(&'static str, u64)> {
            vec![$((stringify!($op), u64::from(c.$op)),)*]
        }
    };
}
wasmtime::wasmparser::for_each_operator!(define_names_and_costs);

#[test]
fn every_operator_costs_what_the_replica_charges() {
    let table = names_and_costs(&operator_cost());
    for (name, _) in NOT_ONE {
        assert!(
            table.iter().any(|(op, _)| op == name),
            "{name} is not an operator"
        );
    }
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|&(op, in_table)| {
            let replica = NOT_ONE
                .iter()
                .find(|(name, _)| *name == op)
                .map_or(1, |&(_, cost)| cost);
            let charged = if TOPPED_UP.contains(&op) {
                in_table + TOP_UP_BUMP + TOP_UP
            } else {
                in_table
            };
            (charged != replica)
                .then(|| format!("{op}: we charge {charged}, the replica {replica}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_top_up_bump_costs_what_its_four_operators_cost() {
    let c = operator_cost();
    let bump = [c.GlobalGet, c.I64Const, c.I64Add, c.GlobalSet]
        .iter()
        .map(|&x| u64::from(x))
        .sum::<u64>();
    assert_eq!(bump, TOP_UP_BUMP);
}

#[test]
fn bulk_operations_cost_one_per_byte_or_element_and_growing_nothing_more() {
    let v = operator_cost().variable;
    let per_unit = [
        v.memory_copy_per_byte,
        v.memory_fill_per_byte,
        v.memory_init_per_byte,
        v.table_copy_per_element,
        v.table_fill_per_element,
        v.table_init_per_element,
    ];
    assert_eq!(per_unit, [1; 6]);
    assert_eq!((v.memory_grow_per_page, v.table_grow_per_element), (0, 0));
}

#[test]
fn the_log_charge_stops_at_the_log_capacity() {
    assert_eq!(log_bytes(0), 0);
    assert_eq!(log_bytes(10), 520);
    assert_eq!(log_bytes(1 << 20), 52 * 4096);
}
