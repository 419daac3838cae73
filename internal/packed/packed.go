// Package packed keeps a list of byte strings, such as the JSON of a
// rendering's objects, compressed in one block. Objects of one rendering
// repeat each other's keys and values, so the block is a fraction of their
// size; a list is read whole, or one item at a time, by decompressing it.
package packed

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
)

// List is a packed list. Its zero value is the empty list. A List is never
// changed once made, so it is safe for concurrent use.
type List struct {
	block []byte
	ends  []uint32 // ends[i] is where item i ends in the unpacked bytes
}

// Pack packs items.
func Pack(items [][]byte) (List, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return List{}, err
	}
	ends := make([]uint32, len(items))
	var n uint64
	for i, it := range items {
		n += uint64(len(it))
		if n > 1<<32-1 {
			return List{}, fmt.Errorf("packed: %d bytes, more than a list holds", n)
		}
		ends[i] = uint32(n)
		if _, err := w.Write(it); err != nil {
			return List{}, err
		}
	}
	if err := w.Close(); err != nil {
		return List{}, err
	}
	return List{block: bytes.Clone(buf.Bytes()), ends: ends}, nil
}

// Len is the number of items.
func (l List) Len() int { return len(l.ends) }

// Size is the packed size in bytes.
func (l List) Size() int { return len(l.block) + 4*len(l.ends) }

// Unpack returns every item. They share one buffer of the caller's own.
func (l List) Unpack() ([][]byte, error) {
	if len(l.ends) == 0 {
		return nil, nil
	}
	all := make([]byte, l.ends[len(l.ends)-1])
	r := flate.NewReader(bytes.NewReader(l.block))
	defer r.Close()
	if _, err := io.ReadFull(r, all); err != nil {
		return nil, fmt.Errorf("packed: %w", err)
	}
	items := make([][]byte, len(l.ends))
	start := uint32(0)
	for i, end := range l.ends {
		items[i] = all[start:end:end]
		start = end
	}
	return items, nil
}

// Item returns item i, of the caller's own.
func (l List) Item(i int) ([]byte, error) {
	if i < 0 || i >= len(l.ends) {
		return nil, fmt.Errorf("packed: item %d of %d", i, len(l.ends))
	}
	start := uint32(0)
	if i > 0 {
		start = l.ends[i-1]
	}
	r := flate.NewReader(bytes.NewReader(l.block))
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, int64(start)); err != nil {
		return nil, fmt.Errorf("packed: %w", err)
	}
	item := make([]byte, l.ends[i]-start)
	if _, err := io.ReadFull(r, item); err != nil {
		return nil, fmt.Errorf("packed: %w", err)
	}
	return item, nil
}
