package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// The bolt file format, as far as checkBoltFile reads it (bbolt
// internal/common: page.go, meta.go). Both meta pages are written in the
// machine's byte order.
const (
	boltMagic          uint32 = 0xED0CDAED
	boltFormatVersion  uint32 = 2
	boltPageHeaderSize        = 16 // id u64, flags u16, count u16, overflow u32
	boltMetaSize              = 64 // magic, version, pageSize, flags, root{pgid, seq}, freelist, pgid, txid, checksum
	boltMetaSumOffset         = 56 // the checksum covers the meta bytes before it
	boltPgidNoFreelist uint64 = 0xffffffffffffffff
	boltMinPageSize           = 1024
	boltMaxPageSize           = 1024 << 14 // the largest bbolt looks for
)

// boltMeta is what checkBoltFile needs from one meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark: pages below it are in use
	txid     uint64
}

// parseBoltMeta decodes and validates a meta page; b starts at the page.
func parseBoltMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeaderSize+boltMetaSize {
		return boltMeta{}, errors.New("meta page is cut short")
	}
	m := b[boltPageHeaderSize : boltPageHeaderSize+boltMetaSize]
	ne := binary.NativeEndian
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("no bolt magic number")
	}
	if v := ne.Uint32(m[4:]); v != boltFormatVersion {
		return boltMeta{}, fmt.Errorf("bolt format version %d, want %d", v, boltFormatVersion)
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumOffset])
	if ne.Uint64(m[boltMetaSumOffset:]) != h.Sum64() {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	return boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

// checkBoltHeader reads the head of an existing file and reports whether
// bbolt can safely open it. It exists because bbolt.Open initialises an
// empty file in place, and maps a truncated file whose missing pages then
// fault (SIGBUS) when read instead of returning an error. It only reads, and
// needs no lock: bbolt writes a meta page only over the older of the two.
func checkBoltHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, err = readBoltHeader(f)
	return err
}

// readBoltHeader validates the meta pages of f and returns the one bbolt
// will use and the page size.
func readBoltHeader(f *os.File) (boltMeta, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return boltMeta{}, 0, err
	}
	if !st.Mode().IsRegular() {
		return boltMeta{}, 0, fmt.Errorf("it is not a regular file (%s)", st.Mode().Type())
	}
	size := st.Size()
	if size == 0 {
		return boltMeta{}, 0, errors.New("the file is empty")
	}
	// A short read is judged by the length of what came back.
	readAt := func(off int64, n int) []byte {
		b := make([]byte, n)
		k, _ := f.ReadAt(b, off)
		return b[:k]
	}

	// Find the page size the way bbolt does: from meta page 0, else from
	// meta page 1 at each page size bbolt supports.
	var pageSize int64
	m0, err0 := parseBoltMeta(readAt(0, boltPageHeaderSize+boltMetaSize))
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	} else {
		for ps := int64(boltMinPageSize); ps <= boltMaxPageSize && ps < size; ps <<= 1 {
			if m1, err := parseBoltMeta(readAt(ps, boltPageHeaderSize+boltMetaSize)); err == nil {
				pageSize = int64(m1.pageSize)
				break
			}
		}
	}
	if pageSize == 0 {
		if size < boltPageHeaderSize+boltMetaSize {
			return boltMeta{}, 0, fmt.Errorf("the file is only %d bytes long, too short for a bolt database", size)
		}
		return boltMeta{}, 0, fmt.Errorf("no valid bolt meta page (page 0: %v)", err0)
	}
	if pageSize < boltMinPageSize || pageSize > boltMaxPageSize || pageSize&(pageSize-1) != 0 {
		return boltMeta{}, 0, fmt.Errorf("bolt page size %d is not plausible", pageSize)
	}
	if size < 2*pageSize {
		return boltMeta{}, 0, fmt.Errorf("the file is %d bytes long, shorter than its two %d-byte meta pages (truncated?)", size, pageSize)
	}

	// bbolt uses the valid meta page with the higher transaction id.
	m0, err0 = parseBoltMeta(readAt(0, boltPageHeaderSize+boltMetaSize))
	m1, err1 := parseBoltMeta(readAt(pageSize, boltPageHeaderSize+boltMetaSize))
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return boltMeta{}, 0, fmt.Errorf("both bolt meta pages are invalid (%v; %v)", err0, err1)
	case err0 != nil:
		m = m1
	case err1 != nil:
		m = m0
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	if int64(m.pageSize) != pageSize {
		return boltMeta{}, 0, fmt.Errorf("the meta pages disagree on the page size (%d, %d)", pageSize, m.pageSize)
	}
	if m.pgid < 3 || m.pgid > uint64(size/pageSize) {
		return boltMeta{}, 0, fmt.Errorf("the file holds %d pages of %d bytes but its meta page says %d are in use (truncated?)",
			size/pageSize, pageSize, m.pgid)
	}
	if m.root < 2 || m.root >= m.pgid {
		return boltMeta{}, 0, fmt.Errorf("the root page %d lies outside the %d pages in use", m.root, m.pgid)
	}
	if m.freelist != boltPgidNoFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
		return boltMeta{}, 0, fmt.Errorf("the freelist page %d lies outside the %d pages in use", m.freelist, m.pgid)
	}
	return m, pageSize, nil
}

// checkBoltPages walks every page reachable from the meta page bbolt will
// use and checks that each page reference, element, key and value lies
// inside the pages in use. bbolt follows these offsets unchecked through
// its memory map; on a damaged file that faults, and tx.Check does it on a
// goroutine of its own where no recover can catch it. After this walk,
// tx.Check only meets in-bounds memory. Run it under bbolt's file lock so
// that no writer reuses pages during the walk.
func checkBoltPages(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	m, ps, err := readBoltHeader(f)
	if err != nil {
		return err
	}
	w := pageWalker{f: f, ps: ps, hwm: m.pgid, seen: make(map[uint64]bool), seenInline: make(map[[2]uint64]bool)}
	if m.freelist != boltPgidNoFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	return w.tree(m.root, 0)
}

const (
	boltBranchPage   = 0x01
	boltLeafPage     = 0x02
	boltFreelistPage = 0x10
	boltBucketLeaf   = 0x01
	boltElementSize  = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	boltInBucketSize = 16 // root pgid, sequence
	maxTreeDepth     = 64 // far beyond any real B+tree and bucket nesting
)

type pageWalker struct {
	f    *os.File
	ps   int64
	hwm  uint64
	seen map[uint64]bool
	// seenInline holds the inline buckets walked, by page and offset in
	// it: elements that share one would make the walk exponential.
	seenInline map[[2]uint64]bool
}

// page reads page id with its overflow pages, checking that they are in use
// and referenced once.
func (w *pageWalker) page(id uint64, flags uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d is referenced but only pages 2..%d are in use", id, w.hwm-1)
	}
	if w.seen[id] {
		return nil, fmt.Errorf("page %d is referenced twice", id)
	}
	w.seen[id] = true
	hdr := make([]byte, boltPageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d identifies itself as page %d", id, got)
	}
	if got := ne.Uint16(hdr[8:]); got != flags {
		return nil, fmt.Errorf("page %d has type %#x where %#x belongs", id, got, flags)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return nil, fmt.Errorf("page %d runs over %d pages, past the %d in use", id, overflow, w.hwm)
	}
	b := make([]byte, int64(overflow+1)*w.ps)
	if _, err := w.f.ReadAt(b, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("page %d: %v", id, err)
	}
	return b, nil
}

func (w *pageWalker) freelist(id uint64) error {
	b, err := w.page(id, boltFreelistPage)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	ne := binary.NativeEndian
	idx, count := uint64(0), uint64(ne.Uint16(b[10:]))
	if count == 0xFFFF {
		if len(b) < boltPageHeaderSize+8 {
			return fmt.Errorf("freelist page %d is cut short", id)
		}
		idx, count = 1, ne.Uint64(b[boltPageHeaderSize:])
	}
	if count > uint64(len(b)) || boltPageHeaderSize+(idx+count)*8 > uint64(len(b)) {
		return fmt.Errorf("freelist page %d claims %d entries, more than it holds", id, count)
	}
	for i := idx; i < idx+count; i++ {
		if free := ne.Uint64(b[boltPageHeaderSize+i*8:]); free < 2 || free >= w.hwm {
			return fmt.Errorf("freelist page %d lists page %d, outside the %d in use", id, free, w.hwm)
		}
	}
	return nil
}

// tree checks the B+tree rooted at page id: branch or leaf.
func (w *pageWalker) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: the tree is deeper than %d levels", id, maxTreeDepth)
	}
	hdr := make([]byte, boltPageHeaderSize)
	if id >= 2 && id < w.hwm {
		if _, err := w.f.ReadAt(hdr, int64(id)*w.ps); err != nil {
			return fmt.Errorf("page %d: %v", id, err)
		}
	}
	flags := binary.NativeEndian.Uint16(hdr[8:])
	if flags != boltBranchPage {
		flags = boltLeafPage
	}
	b, err := w.page(id, flags)
	if err != nil {
		return err
	}
	if flags == boltLeafPage {
		return w.leaf(b, id, 0, depth)
	}
	ne := binary.NativeEndian
	count := int(ne.Uint16(b[10:]))
	if boltPageHeaderSize+count*boltElementSize > len(b) {
		return fmt.Errorf("branch page %d claims %d elements, more than it holds", id, count)
	}
	for i := range count {
		off := boltPageHeaderSize + i*boltElementSize
		e := b[off:]
		pos, ksize := uint64(ne.Uint32(e)), uint64(ne.Uint32(e[4:]))
		if uint64(off)+pos+ksize > uint64(len(b)) {
			return fmt.Errorf("branch page %d: element %d lies outside the page", id, i)
		}
		if err := w.tree(ne.Uint64(e[8:]), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks a leaf page (b, or an inline bucket's page inside a value at
// offset base of page id) and the buckets it holds.
func (w *pageWalker) leaf(b []byte, id uint64, base uint64, depth int) error {
	ne := binary.NativeEndian
	if len(b) < boltPageHeaderSize {
		return fmt.Errorf("an inline bucket in page %d is cut short", id)
	}
	count := int(ne.Uint16(b[10:]))
	if boltPageHeaderSize+count*boltElementSize > len(b) {
		return fmt.Errorf("leaf page %d claims %d elements, more than it holds", id, count)
	}
	for i := range count {
		off := boltPageHeaderSize + i*boltElementSize
		e := b[off:]
		flags := ne.Uint32(e)
		pos, ksize, vsize := uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		end := uint64(off) + pos + ksize + vsize
		if end > uint64(len(b)) {
			return fmt.Errorf("leaf page %d: element %d lies outside the page", id, i)
		}
		if flags&boltBucketLeaf == 0 {
			continue
		}
		v := b[end-vsize : end]
		if len(v) < boltInBucketSize {
			return fmt.Errorf("leaf page %d: bucket %d has a %d-byte header", id, i, len(v))
		}
		if root := ne.Uint64(v); root != 0 {
			if err := w.tree(root, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := v[boltInBucketSize:]
		if len(inline) < boltPageHeaderSize || ne.Uint16(inline[8:]) != boltLeafPage {
			return fmt.Errorf("leaf page %d: inline bucket %d is not a leaf page", id, i)
		}
		if depth > maxTreeDepth {
			return fmt.Errorf("page %d: buckets nest deeper than %d levels", id, maxTreeDepth)
		}
		at := base + end - vsize + boltInBucketSize
		if w.seenInline[[2]uint64{id, at}] {
			return fmt.Errorf("leaf page %d: the inline bucket at byte %d is referenced twice", id, at)
		}
		w.seenInline[[2]uint64{id, at}] = true
		if err := w.leaf(inline, id, at, depth+1); err != nil {
			return err
		}
	}
	return nil
}
