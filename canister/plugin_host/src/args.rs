//! `invoke`'s arguments, decoded without candid's type checks when they are already known to fit.
//!
//! candid's decoder parses the message's type table and checks it against the Rust types on every
//! call: for `invoke`'s `(text, text, blob, opt InvokeOptions)` that is ~75 k instructions, more
//! than a warm plugin call. A message whose type part is byte for byte the one candid writes for
//! these Rust types (what Rust callers, such as `plugin-host-client`, send) can only mean one
//! thing, so its values are read directly. Any other message (types written differently, by dfx
//! from the `.did` say, or values that do not read) goes through candid as before. Both paths give
//! the same values (tested below).

use std::cell::OnceCell;

use candid::utils::decode_args_with_config;
use candid::{DecoderConfig, Encode};
use plugin_host_api::{ByteBuf, InvokeOptions};

/// `invoke`'s arguments (the one definition of them; `interface` declares their Candid type).
#[derive(Debug, Clone)]
pub struct InvokeArgs {
    /// The plugin.
    pub plugin: String,
    /// The function.
    pub function: String,
    /// The input.
    pub input: ByteBuf,
    /// The options.
    pub options: Option<InvokeOptions>,
}

/// As candid decodes them.
type Tuple = (String, String, ByteBuf, Option<InvokeOptions>);

impl From<Tuple> for InvokeArgs {
    fn from((plugin, function, input, options): Tuple) -> Self {
        Self {
            plugin,
            function,
            input,
            options,
        }
    }
}

thread_local! {
    /// `DIDL`, type table and argument types of [`InvokeArgs`] as candid encodes them.
    static PREFIX: OnceCell<Vec<u8>> = const { OnceCell::new() };
}

/// Decodes `invoke`'s arguments (ic-cdk's `decode_with`); traps with candid's message if they
/// do not decode, as ic-cdk's own decoding does.
pub fn decode_invoke_args(bytes: Vec<u8>) -> InvokeArgs {
    direct(&bytes).unwrap_or_else(|| match through_candid(&bytes) {
        Ok(args) => args,
        Err(e) => ic_cdk::trap(format!("invalid invoke arguments: {e}")),
    })
}

/// Decodes `invoke`'s arguments, or `None` if they do not decode (for inspect_message).
pub fn decode(bytes: &[u8]) -> Option<InvokeArgs> {
    direct(bytes).or_else(|| through_candid(bytes).ok())
}

/// The arguments read directly, if the message has the known type part and no options.
fn direct(bytes: &[u8]) -> Option<InvokeArgs> {
    let values = PREFIX.with(|prefix| {
        let prefix = prefix.get_or_init(|| {
            let mut empty = Encode!(
                &String::new(),
                &String::new(),
                &ByteBuf::new(),
                &None::<InvokeOptions>
            )
            .expect("the arguments' types encode");
            // The values of ("", "", empty blob, null) are four zero bytes.
            empty.truncate(empty.len() - 4);
            empty
        });
        bytes.strip_prefix(prefix.as_slice())
    })?;
    let (plugin, values) = bytes_value(values)?;
    let (function, values) = bytes_value(values)?;
    let (input, values) = bytes_value(values)?;
    let options = match values {
        [0] => None,
        [1, fields @ ..] => Some(options(fields)?),
        _ => return None,
    };
    Some(InvokeArgs {
        plugin: String::from_utf8(plugin.to_vec()).ok()?,
        function: String::from_utf8(function.to_vec()).ok()?,
        input: ByteBuf::from(input.to_vec()),
        options,
    })
}

/// The values of `record { fuel : opt nat64; logs : opt bool }`, in field-id order, to the end.
fn options(fields: &[u8]) -> Option<InvokeOptions> {
    let mut options = InvokeOptions::default();
    let mut rest = fields;
    let fuel_first = candid::idl_hash("fuel") < candid::idl_hash("logs");
    for field in if fuel_first { [0, 1] } else { [1, 0] } {
        rest = match (field, rest) {
            (_, [0, more @ ..]) => more,
            (0, [1, more @ ..]) if more.len() >= 8 => {
                let (fuel, more) = more.split_at(8);
                options.fuel = Some(u64::from_le_bytes(fuel.try_into().ok()?));
                more
            }
            (1, [1, logs @ (0 | 1), more @ ..]) => {
                options.logs = Some(*logs == 1);
                more
            }
            _ => return None,
        };
    }
    rest.is_empty().then_some(options)
}

/// A `text` or `blob` value: its LEB128 length, then its bytes.
fn bytes_value(values: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut len, mut shift, mut at) = (0u64, 0u32, 0usize);
    loop {
        let byte = *values.get(at)?;
        at += 1;
        len |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let rest = &values[at..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// As ic-cdk decodes arguments by default.
fn through_candid(bytes: &[u8]) -> candid::Result<InvokeArgs> {
    let bytes: &[u8] = if bytes.is_empty() {
        b"DIDL\x00\x00"
    } else {
        bytes
    };
    let mut config = DecoderConfig::new();
    config.set_skipping_quota(10_000);
    decode_args_with_config::<Tuple>(bytes, &config).map(InvokeArgs::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candid::Encode;

    fn args(
        plugin: &str,
        function: &str,
        input: &[u8],
        options: Option<InvokeOptions>,
    ) -> InvokeArgs {
        InvokeArgs {
            plugin: plugin.into(),
            function: function.into(),
            input: ByteBuf::from(input.to_vec()),
            options,
        }
    }

    fn same(a: &InvokeArgs, b: &InvokeArgs) -> bool {
        let options = |o: &Option<InvokeOptions>| o.as_ref().map(|o| (o.fuel, o.logs));
        (&a.plugin, &a.function, &a.input, options(&a.options))
            == (&b.plugin, &b.function, &b.input, options(&b.options))
    }

    fn encode(a: &InvokeArgs) -> Vec<u8> {
        Encode!(&a.plugin, &a.function, &a.input, &a.options).expect("encode")
    }

    /// `options` reads exactly these fields: a change to `InvokeOptions` must change it too.
    #[test]
    fn the_options_record_is_the_one_read_directly() {
        use candid::CandidType;
        assert_eq!(
            InvokeOptions::ty().to_string(),
            "record { fuel : opt nat64; logs : opt bool }",
            "InvokeOptions changed: update `options` in args.rs"
        );
    }

    #[test]
    fn rust_encoded_arguments_without_options_are_read_directly_and_exactly() {
        let long = vec![7u8; 300];
        for expected in [
            args("counter", "increment", b"", None),
            args("", "", b"", None),
            args("ünïcødé ✓", "f", &long, None),
        ] {
            let bytes = encode(&expected);
            let direct = direct(&bytes).expect("the known type part is read directly");
            assert!(same(&direct, &expected));
            assert!(same(
                &through_candid(&bytes).expect("candid decodes"),
                &expected
            ));
        }
    }

    #[test]
    fn anything_else_goes_through_candid_with_the_same_result() {
        let with_options = args(
            "counter",
            "increment",
            b"1",
            Some(InvokeOptions {
                fuel: Some(5),
                logs: Some(true),
            }),
        );
        let bytes = encode(&with_options);
        assert!(same(&direct(&bytes).expect("read directly"), &with_options));
        assert!(same(&decode_invoke_args(bytes), &with_options));
        for (fuel, logs) in [(None, Some(false)), (Some(u64::MAX), None), (None, None)] {
            let expected = args("p", "f", b"x", Some(InvokeOptions { fuel, logs }));
            let bytes = encode(&expected);
            assert!(same(&direct(&bytes).expect("read directly"), &expected));
        }

        // As dfx sends it: encoded from Candid text, with the types it infers.
        let text = candid_parser::parse_idl_args(r#"("counter", "increment", blob "1")"#)
            .expect("Candid text");
        let bytes = text.to_bytes().expect("encode");
        assert!(same(
            &decode_invoke_args(bytes),
            &args("counter", "increment", b"1", None)
        ));

        // Truncated values, a bad length and trailing bytes are not read directly.
        let good = Encode!(
            &"p".to_owned(),
            &"f".to_owned(),
            &ByteBuf::from(vec![1, 2]),
            &None::<InvokeOptions>
        )
        .expect("encode");
        assert!(direct(&good[..good.len() - 1]).is_none());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(direct(&trailing).is_none());
        let mut not_utf8 = good.clone();
        let at = not_utf8.len() - 7; // the plugin name's one byte
        not_utf8[at] = 0xff;
        assert!(direct(&not_utf8).is_none());
        assert!(through_candid(&not_utf8).is_err());
    }
}
