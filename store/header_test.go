package store

import (
	"encoding/binary"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// boltFile builds a bolt file of 4 pages of 4096 bytes whose root leaf
// (page 3) is root; the freelist (page 2) is empty.
func boltFile(root []byte) []byte {
	const ps = 4096
	ne := binary.NativeEndian
	b := make([]byte, 4*ps)
	for i := range 2 {
		p := b[i*ps:]
		ne.PutUint64(p, uint64(i))
		ne.PutUint16(p[8:], 0x04) // meta
		m := p[boltPageHeaderSize:]
		ne.PutUint32(m[0:], boltMagic)
		ne.PutUint32(m[4:], boltFormatVersion)
		ne.PutUint32(m[8:], ps)
		ne.PutUint64(m[16:], 3) // root
		ne.PutUint64(m[32:], 2) // freelist
		ne.PutUint64(m[40:], 4) // pages in use
		ne.PutUint64(m[48:], uint64(i))
		h := fnv.New64a()
		h.Write(m[:boltMetaSumOffset])
		ne.PutUint64(m[boltMetaSumOffset:], h.Sum64())
	}
	ne.PutUint64(b[2*ps:], 2)
	ne.PutUint16(b[2*ps+8:], boltFreelistPage)
	copy(b[3*ps:], root)
	ne.PutUint64(b[3*ps:], 3)
	return b
}

// nestedInline is a leaf page of two bucket elements that both hold the
// same inline bucket, whose page is again such a leaf, depth levels deep:
// 2^depth paths to walk over a few kilobytes.
func nestedInline(depth int) []byte {
	ne := binary.NativeEndian
	value := make([]byte, boltInBucketSize+boltPageHeaderSize) // innermost: an empty inline leaf
	ne.PutUint16(value[boltInBucketSize+8:], boltLeafPage)
	page := func(payload []byte) []byte {
		p := make([]byte, boltPageHeaderSize+2*boltElementSize, boltPageHeaderSize+2*boltElementSize+len(payload))
		ne.PutUint16(p[8:], boltLeafPage)
		ne.PutUint16(p[10:], 2)
		for i := range 2 {
			off := boltPageHeaderSize + i*boltElementSize
			e := p[off:]
			ne.PutUint32(e, boltBucketLeaf)
			ne.PutUint32(e[4:], uint32(len(p)-off)) // pos: the shared payload
			ne.PutUint32(e[8:], 0)
			ne.PutUint32(e[12:], uint32(len(payload)))
		}
		return append(p, payload...)
	}
	for range depth {
		value = append(make([]byte, boltInBucketSize), page(value)...)
	}
	return page(value)
}

// A few kilobytes of inline buckets that share their bytes made the walk
// take 2^depth steps: an open of such a file never returned.
func TestCheckBoltPages_SharedInlineBucketsAreWalkedOnce(t *testing.T) {
	root := nestedInline(55)
	if len(root) > 4096 {
		t.Fatalf("the crafted page is %d bytes", len(root))
	}
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, boltFile(root), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkBoltHeader(path); err != nil {
		t.Fatalf("header: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- checkBoltPages(path) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "inline bucket") {
			t.Fatalf("pages: %v, want the shared inline bucket refused", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("checkBoltPages did not return within 10 s")
	}
	// And Open refuses the file, untouched.
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "inline bucket") {
		t.Fatalf("open: %v", err)
	}
}
