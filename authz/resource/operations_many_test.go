package resource

import (
	"bytes"
	"strconv"
	"testing"
)

// TestOperationsManyDistinct: a batch as large as a body may be, of
// distinct operations, and repeated ones, is read in full with every
// operation once. (Before the set, the de-duplication was quadratic: a
// 4 MiB body of 215 000 operations took over a minute of CPU.)
func TestOperationsManyDistinct(t *testing.T) {
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for ; b.Len() < 4<<20-4096; n++ {
		b.WriteString(`{"method":"m` + strconv.Itoa(n) + `"},`)
	}
	for i := range 100 { // repeated: listed once
		b.WriteString(`{"method":"m` + strconv.Itoa(i) + `"},`)
	}
	b.WriteString(`{"method":"m0"}]`)
	ops, err := operations(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != n {
		t.Errorf("%d distinct operations (and repeats) gave %d, want %d", n, len(ops), n)
	}
	seen := map[[2]string]bool{}
	for _, op := range ops {
		if seen[op] {
			t.Fatalf("operation %q listed twice", op)
		}
		seen[op] = true
	}
}
