package redisstore

import (
	"errors"
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
