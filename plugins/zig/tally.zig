//! A plugin in Zig, unmodified Zig std on WASI preview 1: a word tally in a `std.StringHashMap`
//! on the wasm allocator's heap, which lives in the plugin's linear memory and so persists between
//! calls and across canister upgrades; a call that fails leaves it as it was. No PDK: it declares
//! the few Extism imports it uses itself.
//!
//! Build (`cargo xtask build-plugins` does it, with Zig from the `ziglang` package on PyPI):
//!   zig build-exe tally.zig -target wasm32-wasi -fno-entry -rdynamic -O ReleaseSmall \
//!     --stack 65536 --initial-memory=131072 -femit-bin=zig_tally.wasm
//! (Zig's defaults, a 1 MiB stack and 16 MiB of initial memory, would make every install and
//! restore copy 16 MiB.)
const std = @import("std");

extern "extism:host/env" fn input_length() u64;
extern "extism:host/env" fn input_load_u8(offset: u64) u32;
extern "extism:host/env" fn alloc(length: u64) u64;
extern "extism:host/env" fn store_u8(offset: u64, byte: u32) void;
extern "extism:host/env" fn output_set(offset: u64, length: u64) void;
extern "extism:host/env" fn error_set(offset: u64) void;

const allocator = std.heap.wasm_allocator;
var words: std.StringHashMapUnmanaged(u64) = .empty;
var total: u64 = 0;

fn block(bytes: []const u8) u64 {
    const handle = alloc(bytes.len);
    for (bytes, 0..) |byte, i| store_u8(handle + i, byte);
    return handle;
}

fn output(bytes: []const u8) void {
    output_set(block(bytes), bytes.len);
}

fn fail(message: []const u8) i32 {
    error_set(block(message));
    return 1;
}

fn input() ![]u8 {
    const length = input_length();
    const bytes = try allocator.alloc(u8, @intCast(length));
    for (bytes, 0..) |*byte, i| byte.* = @intCast(input_load_u8(i));
    return bytes;
}

/// add: tallies the words of the input; outputs {"added":N,"distinct":D,"total":T}.
export fn add() i32 {
    const text = input() catch return fail("out of memory");
    defer allocator.free(text);
    var added: u64 = 0;
    var it = std.mem.tokenizeAny(u8, text, " \t\r\n");
    while (it.next()) |word| {
        const entry = words.getOrPut(allocator, word) catch return fail("out of memory");
        if (!entry.found_existing) {
            entry.key_ptr.* = allocator.dupe(u8, word) catch return fail("out of memory");
            entry.value_ptr.* = 0;
        }
        entry.value_ptr.* += 1;
        added += 1;
    }
    if (added == 0) return fail("add: the input has no words");
    total += added;
    var buffer: [96]u8 = undefined;
    const json = std.fmt.bufPrint(&buffer, "{{\"added\":{d},\"distinct\":{d},\"total\":{d}}}", .{ added, words.count(), total }) catch return fail("output too long");
    output(json);
    return 0;
}

/// add_then_fail: tallies the words, then fails: the host must undo the tally.
export fn add_then_fail() i32 {
    if (add() != 0) return 1;
    return fail("failing on purpose after adding");
}

/// count: how often the input word was added.
export fn count() i32 {
    const word = input() catch return fail("out of memory");
    defer allocator.free(word);
    var buffer: [32]u8 = undefined;
    const json = std.fmt.bufPrint(&buffer, "{d}", .{words.get(word) orelse 0}) catch return fail("output too long");
    output(json);
    return 0;
}

/// now: the time through WASI's clock (the message's IC time), in ms since the epoch.
export fn now() i32 {
    var buffer: [32]u8 = undefined;
    var nanos: std.os.wasi.timestamp_t = 0;
    if (std.os.wasi.clock_time_get(.REALTIME, 1, &nanos) != .SUCCESS) return fail("no clock");
    const json = std.fmt.bufPrint(&buffer, "{d}", .{nanos / std.time.ns_per_ms}) catch return fail("output too long");
    output(json);
    return 0;
}
