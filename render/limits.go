package render

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// A commit is input from whoever can push to its branch, who may be hostile.
// Limits bound what one rendering may cost, so that a hostile commit fails
// its own revision, quickly and with a message naming the file, instead of
// exhausting ferry's memory or stalling other environments:
//
//   - a file larger than MaxFileBytes is not read;
//   - the files read, together, may not exceed MaxRenderBytes (kustomize
//     may read a file many times);
//   - YAML aliases are expanded by nobody: a file whose aliases would
//     expand it past maxExpansion is refused before kustomize or the
//     manifest parser sees it (checkAliases, TestRenderRefusesAliasBomb);
//   - a directory is rendered once, however many symbolic links lead to it;
//   - the rendering may hold at most MaxObjects objects of at most
//     MaxRenderBytes of JSON;
//   - every read of the repository fails once Timeout has passed, which
//     ends a kustomize build at its next read.

// ErrLimit marks a rendering refused by a limit: a verdict on the commit.
var ErrLimit = errors.New("over a render limit")

// ErrDeadline marks, beside ErrLimit, a rendering that ran past
// Limits.Timeout. Unlike the other limits it depends on the machine as well
// as on the commit: a build slowed by a busy machine runs past it too.
var ErrDeadline = errors.New("the rendering ran past its deadline")

// deadlineError is the error of a rendering past timeout.
func deadlineError(timeout time.Duration) error {
	return fmt.Errorf("%w: %w of %s (limits.renderTimeout)", ErrLimit, ErrDeadline, timeout)
}

// Limits bound one rendering.
type Limits struct {
	// MaxFileBytes is the largest file read.
	MaxFileBytes int64
	// MaxObjects is the most objects a rendering may hold.
	MaxObjects int
	// MaxRenderBytes bounds the bytes read from the repository and the
	// JSON of the rendered objects, each.
	MaxRenderBytes int64
	// Timeout bounds the rendering.
	Timeout time.Duration
}

// DefaultLimits returns 5 MiB per file, 20,000 objects, 50 MiB and 30s.
func DefaultLimits() Limits {
	return Limits{MaxFileBytes: 5 << 20, MaxObjects: 20000, MaxRenderBytes: 50 << 20, Timeout: 30 * time.Second}
}

// orDefault fills the limits left at zero.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxRenderBytes <= 0 {
		l.MaxRenderBytes = d.MaxRenderBytes
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	return l
}

// String names the limits, for cache keys.
func (l Limits) String() string {
	return fmt.Sprintf("%d/%d/%d/%s", l.MaxFileBytes, l.MaxObjects, l.MaxRenderBytes, l.Timeout)
}

// budget tracks one rendering against its limits. A nil budget is
// unlimited.
type budget struct {
	limits   Limits
	deadline time.Time
	read     int64 // bytes read from the repository so far
	// refused is the first refusal: kustomize wraps the errors of the
	// filesystem in its own text, so the build's error is replaced by it.
	refused error
}

// refuse records err, if it is the first refusal, and returns it.
func (b *budget) refuse(err error) error {
	if b.refused == nil {
		b.refused = err
	}
	return err
}

func newBudget(l Limits) *budget {
	l = l.orDefault()
	return &budget{limits: l, deadline: time.Now().Add(l.Timeout)}
}

// live fails once the deadline has passed.
func (b *budget) live() error {
	if b != nil && time.Now().After(b.deadline) {
		return b.refuse(deadlineError(b.limits.Timeout))
	}
	return nil
}

// file admits reading a file of size bytes, named name in messages.
func (b *budget) file(name string, size int64) error {
	if b == nil {
		return nil
	}
	if err := b.live(); err != nil {
		b.refused = fmt.Errorf("%s: %w", name, err)
		return b.refused
	}
	if size > b.limits.MaxFileBytes {
		return b.refuse(fmt.Errorf("%s: %w: the file is %s, more than %s (limits.maxFileBytes)", name, ErrLimit, size2(size), size2(b.limits.MaxFileBytes)))
	}
	b.read += size
	if b.read > b.limits.MaxRenderBytes {
		return b.refuse(fmt.Errorf("%s: %w: the files read add up to more than %s (limits.maxRenderBytes)", name, ErrLimit, size2(b.limits.MaxRenderBytes)))
	}
	return nil
}

// objects admits a rendering of n objects.
func (b *budget) objects(n int) error {
	if b != nil && n > b.limits.MaxObjects {
		return fmt.Errorf("%w: the rendering holds more than %d objects (limits.maxObjects)", ErrLimit, b.limits.MaxObjects)
	}
	return nil
}

// output admits a rendering of size bytes of JSON.
func (b *budget) output(size int64) error {
	if b != nil && size > b.limits.MaxRenderBytes {
		return fmt.Errorf("%w: the rendering is more than %s of JSON (limits.maxRenderBytes)", ErrLimit, size2(b.limits.MaxRenderBytes))
	}
	return nil
}

// size2 writes a byte count for people: 5 MiB, 6.5 MiB, 812 KiB, 12 bytes.
func size2(n int64) string {
	switch {
	case n >= 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	case n >= 1<<10:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// Alias expansion. maxExpansion bounds the nodes a YAML file may expand
// to, counting every alias as a copy of what it names: a file may expand
// to maxExpansionFactor times its own nodes, or minExpansion, whichever is
// more. Ordinary files with anchors (merge keys, shared snippets) stay far
// below; a "billion laughs" file expands to billions.
const (
	maxExpansionFactor = 10
	minExpansion       = 100_000
)

// checkAliases refuses a YAML stream whose aliases would expand it past the
// bound above, naming the file and the alias where the bound is passed.
// Data that does not parse as YAML is left to the parser that reads it; it
// cannot expand either. The walk visits every parsed node once (memoised
// sizes), so it is linear in the file.
func checkAliases(name string, data []byte) (err error) {
	if !bytes.Contains(data, []byte("*")) {
		return nil // no alias, nothing to expand
	}
	defer func() {
		if p := recover(); p != nil {
			err = nil // the parser that reads it reports it
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if dec.Decode(&doc) != nil {
			return nil // end of stream, or not YAML
		}
		s := &sizer{memo: map[*yaml.Node]int64{}}
		parsed := s.count(&doc)
		limit := max(minExpansion, maxExpansionFactor*parsed)
		s.limit = limit
		if n := s.expanded(&doc); n > limit {
			return fmt.Errorf("%s: %w: line %d: YAML aliases expand the document to more than %d nodes (a YAML alias bomb); write the repeated content out, or use fewer aliases",
				name, ErrLimit, s.at, limit)
		}
	}
}

// sizer measures YAML node trees.
type sizer struct {
	memo  map[*yaml.Node]int64 // expanded size of each node visited
	limit int64
	at    int // line of the node where the limit was passed
}

// count returns the nodes of the tree as parsed, aliases counting one.
func (s *sizer) count(n *yaml.Node) int64 {
	c := int64(1)
	for _, k := range n.Content {
		c += s.count(k)
	}
	return c
}

// expanded returns the nodes of the tree with every alias replaced by what
// it names, saturating just past s.limit.
func (s *sizer) expanded(n *yaml.Node) int64 {
	if v, ok := s.memo[n]; ok {
		return v
	}
	s.memo[n] = s.limit + 1 // an alias into its own anchor expands forever
	var size int64
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		size = s.expanded(n.Alias)
	} else {
		size = 1
		for _, k := range n.Content {
			size += s.expanded(k)
			if size > s.limit {
				break
			}
		}
	}
	if size > s.limit {
		size = s.limit + 1
		if s.at == 0 {
			s.at = n.Line // the innermost node past the limit
		}
	}
	s.memo[n] = size
	return size
}
