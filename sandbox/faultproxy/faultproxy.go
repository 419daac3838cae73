// Package faultproxy puts a fault-injecting TCP proxy (Shopify's
// toxiproxy, run in-process) between ferry and what it talks to, for the
// end-to-end tests: the API server, Gitea's git and its API. A test points
// ferry at the proxy's address and injects latency, connection resets,
// timeouts and blackholes, per direction, for a given time.
//
// It is test scaffolding: only tests import it, so toxiproxy is never
// linked into the ferry binary (TestNotInFerryBinary).
package faultproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
)

// Direction is the way of the traffic a fault applies to.
type Direction string

// Directions: Upstream is from ferry to the server, Downstream from the
// server to ferry, Both is both.
const (
	Upstream   Direction = "upstream"
	Downstream Direction = "downstream"
	Both       Direction = "both"
)

// Kind is a kind of fault.
type Kind string

// Kinds of faults.
const (
	// Latency delays every chunk by Fault.Latency (± Fault.Jitter).
	Latency Kind = "latency"
	// Reset resets connections (TCP RST) after Fault.After of traffic.
	Reset Kind = "reset_peer"
	// Timeout drops all data and closes the connection after Fault.After.
	Timeout Kind = "timeout"
	// Blackhole drops all data and never closes the connection: a
	// network partition, as the client sees it.
	Blackhole Kind = "blackhole"
	// CutWrites closes a connection when a client sends a chunk of at
	// least Fault.MinBytes: a request with a body (a patch, an update)
	// is cut, small reads pass. Kubernetes clients retry reads cut by a
	// reset by themselves, not writes.
	CutWrites Kind = "cut_writes"
)

// Fault is one fault to inject.
type Fault struct {
	Kind      Kind
	Direction Direction
	// Latency and Jitter are the delay of a Latency fault.
	Latency, Jitter time.Duration
	// After is when a Reset or Timeout fault strikes, once data flows.
	After time.Duration
	// Toxicity is the share of connections the fault applies to; 0 means
	// all of them.
	Toxicity float32
	// MinBytes is the smallest chunk a CutWrites fault cuts.
	MinBytes int
}

// Proxy is one running proxy in front of one upstream address.
type Proxy struct {
	// Addr is the proxy's host:port on 127.0.0.1.
	Addr string
	// Upstream is the address it forwards to.
	Upstream string

	p      *toxiproxy.Proxy
	name   string
	writes *atomic.Int64

	mu     sync.Mutex
	faults map[string]bool
	seq    int
}

var (
	serverOnce sync.Once
	server     *toxiproxy.ApiServer
	nameSeq    atomic.Int64
	counters   sync.Map // proxy name → *atomic.Int64
)

// Start starts a proxy on a free port of 127.0.0.1 that forwards to
// upstream (host:port). Close stops it.
func Start(upstream string) (*Proxy, error) {
	serverOnce.Do(func() {
		server = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.New(io.Discard))
	})
	name := fmt.Sprintf("ferry-%d", nameSeq.Add(1))
	p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("fault proxy for %s: %w", upstream, err)
	}
	writes := new(atomic.Int64)
	counters.Store(name, writes)
	px := &Proxy{Addr: p.Listen, Upstream: upstream, p: p, name: name, writes: writes, faults: map[string]bool{}}
	if _, err := px.add(map[string]any{"name": "count", "type": countType, "stream": "upstream", "attributes": map[string]any{"proxy": name}}); err != nil {
		p.Stop()
		return nil, err
	}
	return px, nil
}

// StartFor is Start for the host:port of rawURL; it returns the proxy and
// rawURL with its host:port replaced by the proxy's.
func StartFor(rawURL string) (*Proxy, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("fault proxy: %w", err)
	}
	p, err := Start(u.Host)
	if err != nil {
		return nil, "", err
	}
	return p, p.Rewrite(rawURL), nil
}

// Rewrite replaces the upstream's host:port in rawURL by the proxy's.
func (p *Proxy) Rewrite(rawURL string) string { return strings.Replace(rawURL, p.Upstream, p.Addr, 1) }

// Writes counts the chunks clients sent through the proxy since it
// started: about one per request, none while a client waits.
func (p *Proxy) Writes() int64 { return p.writes.Load() }

// Inject adds f, until the returned function removes it.
func (p *Proxy) Inject(f Fault) (remove func(), err error) {
	dirs := []Direction{f.Direction}
	switch f.Direction {
	case Both:
		dirs = []Direction{Upstream, Downstream}
	case "":
		dirs = []Direction{Downstream}
	}
	var names []string
	for _, d := range dirs {
		p.mu.Lock()
		p.seq++
		name := fmt.Sprintf("%s-%s-%d", f.Kind, d, p.seq)
		p.mu.Unlock()
		toxicity := f.Toxicity
		if toxicity <= 0 {
			toxicity = 1
		}
		t := map[string]any{"name": name, "stream": string(d), "toxicity": toxicity}
		switch f.Kind {
		case Latency:
			t["type"], t["attributes"] = "latency", map[string]any{"latency": f.Latency.Milliseconds(), "jitter": f.Jitter.Milliseconds()}
		case Reset:
			t["type"], t["attributes"] = "reset_peer", map[string]any{"timeout": f.After.Milliseconds()}
		case Timeout:
			// A timeout of 0 would never close: that is a Blackhole.
			t["type"], t["attributes"] = "timeout", map[string]any{"timeout": max(f.After.Milliseconds(), 1)}
		case Blackhole:
			t["type"], t["attributes"] = "timeout", map[string]any{"timeout": 0}
		case CutWrites:
			t["type"], t["attributes"] = cutType, map[string]any{"min_bytes": f.MinBytes}
		default:
			return nil, fmt.Errorf("fault proxy %s: unknown fault %q", p.Addr, f.Kind)
		}
		if _, err := p.add(t); err != nil {
			p.removeAll(names)
			return nil, err
		}
		names = append(names, name)
	}
	return func() { p.removeAll(names) }, nil
}

// InjectFor injects f for d, or until ctx ends, and then removes it. It
// does not block.
func (p *Proxy) InjectFor(ctx context.Context, f Fault, d time.Duration) error {
	remove, err := p.Inject(f)
	if err != nil {
		return err
	}
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		remove()
	}()
	return nil
}

// Clear removes every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	names := make([]string, 0, len(p.faults))
	for n := range p.faults {
		names = append(names, n)
	}
	p.mu.Unlock()
	p.removeAll(names)
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.p.Stop()
	counters.Delete(p.name)
}

func (p *Proxy) add(toxic map[string]any) (string, error) {
	data, err := json.Marshal(toxic)
	if err != nil {
		return "", err
	}
	w, err := p.p.Toxics.AddToxicJson(strings.NewReader(string(data)))
	if err != nil {
		return "", fmt.Errorf("fault proxy %s: add %s: %w", p.Addr, data, err)
	}
	if toxic["type"] != countType {
		p.mu.Lock()
		p.faults[w.Name] = true
		p.mu.Unlock()
	}
	return w.Name, nil
}

func (p *Proxy) removeAll(names []string) {
	for _, n := range names {
		_ = p.p.Toxics.RemoveToxic(context.Background(), n)
		p.mu.Lock()
		delete(p.faults, n)
		p.mu.Unlock()
	}
}

// countType is the toxic that counts what clients send, passing it on.
const countType = "ferry_count"

type countToxic struct {
	Proxy string `json:"proxy"`
}

func (t *countToxic) Pipe(stub *toxics.ToxicStub) {
	c, _ := counters.Load(t.Proxy)
	n, _ := c.(*atomic.Int64)
	for {
		select {
		case <-stub.Interrupt:
			return
		case chunk := <-stub.Input:
			if chunk == nil {
				stub.Close()
				return
			}
			if n != nil {
				n.Add(1)
			}
			stub.Output <- chunk
		}
	}
}

// cutType is the toxic that closes a connection at its first chunk of at
// least MinBytes.
const cutType = "ferry_cut_writes"

type cutToxic struct {
	MinBytes int `json:"min_bytes"`
}

func (t *cutToxic) Pipe(stub *toxics.ToxicStub) {
	for {
		select {
		case <-stub.Interrupt:
			return
		case chunk := <-stub.Input:
			if chunk == nil || len(chunk.Data) >= t.MinBytes {
				stub.Close()
				return
			}
			stub.Output <- chunk
		}
	}
}

func init() {
	toxics.Register(countType, new(countToxic))
	toxics.Register(cutType, new(cutToxic))
}
