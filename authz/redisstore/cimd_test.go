package redisstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/remotemcp/remotemcp/authz"
	"github.com/remotemcp/remotemcp/authz/as"
	"github.com/remotemcp/remotemcp/internal/redistest"
)

// TestMetadataCache: a document cached by one replica is read by another,
// with its lifetime, and nothing else is returned.
func TestMetadataCache(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	a := newStore(t, rdb, &Options{KeyPrefix: "cimd:"})
	b := newStore(t, newClient(t, srv.Addr, nil), &Options{KeyPrefix: "cimd:"})
	ctx := ctxFor(t)
	id := "https://app.example/client.json"
	c := &as.Client{ClientID: id, Metadata: as.ClientMetadata{ClientID: id, ClientName: "App", RedirectURIs: []string{"http://127.0.0.1/cb"}},
		IssuedAt: time.Now().Truncate(time.Second).UTC()}
	if _, err := b.GetMetadata(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("GetMetadata before any put: %v, want ErrNotFound", err)
	}
	if err := a.PutMetadata(ctx, c, time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetMetadata(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("GetMetadata (-want +got):\n%s", diff)
	}
	if _, err := b.GetMetadata(ctx, id+"x"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("another URL: %v, want ErrNotFound", err)
	}
	advanceExpiry(t, rdb, "cimd:*", time.Second)
	if _, err := b.GetMetadata(ctx, id); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("after its lifetime: %v, want ErrNotFound", err)
	}
	if err := a.PutMetadata(ctx, c, 0); err == nil {
		t.Error("PutMetadata without a lifetime succeeded")
	}
}

// TestMetadataCacheBounds: documents from anyone's URLs fill the cache up
// to its bounds and no further: per host, in number and in bytes. A
// document already cached may be replaced at a bound; an expired one
// frees its place.
func TestMetadataCacheBounds(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr, nil)
	ctx := ctxFor(t)
	doc := func(u string) *as.Client {
		return &as.Client{ClientID: u, Metadata: as.ClientMetadata{ClientID: u, ClientName: "App", Contacts: []string{strings.Repeat("c", 200)}}}
	}
	const rounds = 500
	for _, tt := range []struct {
		name  string
		opts  Options
		url   func(i int) string
		held  int
		bytes int64 // at most, of the whole family
	}{
		{"one host", Options{MaxMetadataPerHost: 20}, func(i int) string { return fmt.Sprintf("https://evil.example/%d.json", i) }, 20, 20 * 1024},
		{"many hosts", Options{MaxMetadataDocuments: 50}, func(i int) string { return fmt.Sprintf("https://h%d.evil.example/c.json", i) }, 50, 50 * 1024},
		{"bytes", Options{MaxMetadataBytes: 10_000}, func(i int) string { return fmt.Sprintf("https://h%d.evil.example/c.json", i) }, 10_000 / 400, 40 * 1024},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.KeyPrefix = "bounds-" + newID() + ":"
			s := newStore(t, rdb, &o)
			var ok, full int
			for i := range rounds {
				err := s.PutMetadata(ctx, doc(tt.url(i)), time.Hour)
				switch {
				case err == nil:
					ok++
				case errors.Is(err, errMetadataCacheFull):
					full++
				default:
					t.Fatalf("PutMetadata %d: %v", i, err)
				}
			}
			size := keySize(t, rdb, o.KeyPrefix+"*")
			t.Logf("%d documents put, %d cached, %d refused: %d keys, %d B", rounds, ok, full, size.Entries, size.Bytes)
			if ok > tt.held || ok < tt.held*9/10 || size.Bytes > tt.bytes {
				t.Errorf("%d of %d documents cached in %d B; want about %d, at most %d B", ok, rounds, size.Bytes, tt.held, tt.bytes)
			}
			if err := s.PutMetadata(ctx, doc(tt.url(0)), time.Hour); err != nil {
				t.Errorf("replacing a cached document at the bound: %v", err)
			}
			advanceExpiry(t, rdb, o.KeyPrefix+"*", time.Hour)
			if err := s.PutMetadata(ctx, doc(tt.url(rounds)), time.Hour); err != nil {
				t.Errorf("after the documents expired: %v", err)
			}
		})
	}
}
