package source

import (
	"errors"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// lockedStorage makes go-git's on-disk storage safe for concurrent use.
// go-git's object storage keeps an unguarded in-memory index of packfiles
// that both reads and fetches change, so every object access and the
// registration of a fetched packfile take one lock. Objects are read whole
// under it (no LargeObjectThreshold), so nothing read later escapes it.
// TestConcurrentReadsDuringFetch pins this under the race detector.
type lockedStorage struct {
	*filesystem.Storage
	mu sync.Mutex
}

// EncodedObject reads an object. A miss re-reads the packfile list once:
// another Repository over the same directory may have fetched since this
// one listed it (TestSharedCloneAcrossOpens).
func (s *lockedStorage) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.Storage.EncodedObject(t, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		s.Storage.Reindex()
		o, err = s.Storage.EncodedObject(t, h)
	}
	return o, err
}

// HasEncodedObject reports whether the object is stored.
func (s *lockedStorage) HasEncodedObject(h plumbing.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Storage.HasEncodedObject(h)
}

// EncodedObjectSize is the size of a stored object.
func (s *lockedStorage) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Storage.EncodedObjectSize(h)
}

// SetEncodedObject stores a loose object.
func (s *lockedStorage) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Storage.SetEncodedObject(o)
}

// DeltaObject reads an object, possibly as a delta (for pushes).
func (s *lockedStorage) DeltaObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Storage.DeltaObject(t, h)
}

// PackfileWriter receives a fetched packfile. Writing it touches only its
// own temporary file; closing it registers its index, under the lock.
func (s *lockedStorage) PackfileWriter() (io.WriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := s.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &lockedCloser{WriteCloser: w, mu: &s.mu}, nil
}

type lockedCloser struct {
	io.WriteCloser
	mu *sync.Mutex
}

func (w *lockedCloser) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.WriteCloser.Close()
}
