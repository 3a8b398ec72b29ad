// A plugin in C: counts the vowels of its input and keeps a running total in its own memory.
// No libc and no PDK needed: it declares the Extism imports it uses itself.
// Build: clang --target=wasm32-unknown-unknown -O2 -nostdlib -Wl,--no-entry -o c_vowels.wasm vowels.c
#include <stdint.h>

#define EXTISM(name) __attribute__((import_module("extism:host/env"), import_name(name)))

EXTISM("input_length") uint64_t input_length(void);
EXTISM("input_load_u8") uint32_t input_load_u8(uint64_t offset);
EXTISM("alloc") uint64_t extism_alloc(uint64_t length);
EXTISM("store_u8") void store_u8(uint64_t offset, uint32_t byte);
EXTISM("output_set") void output_set(uint64_t offset, uint64_t length);

// Durable state: persists between calls and across canister upgrades.
static uint64_t total;

static int put_number(char *out, uint64_t n) {
    char digits[20];
    int len = 0;
    do {
        digits[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    for (int i = 0; i < len; i++) out[i] = digits[len - 1 - i];
    return len;
}

static int put_text(char *out, const char *text) {
    int len = 0;
    while (text[len]) {
        out[len] = text[len];
        len++;
    }
    return len;
}

// Output: {"count":N,"total":M}
__attribute__((export_name("count_vowels"))) int32_t count_vowels(void) {
    uint64_t length = input_length();
    uint64_t count = 0;
    for (uint64_t i = 0; i < length; i++) {
        uint32_t c = input_load_u8(i) | 0x20;
        if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') count++;
    }
    total += count;

    char json[64];
    int len = put_text(json, "{\"count\":");
    len += put_number(json + len, count);
    len += put_text(json + len, ",\"total\":");
    len += put_number(json + len, total);
    len += put_text(json + len, "}");

    uint64_t handle = extism_alloc((uint64_t)len);
    for (int i = 0; i < len; i++) store_u8(handle + (uint64_t)i, (uint8_t)json[i]);
    output_set(handle, (uint64_t)len);
    return 0;
}
