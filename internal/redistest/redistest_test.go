package redistest

import (
	"strings"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("started server: %v", err)
	}
	s.Kill()
	if err := ping(s.Addr); err == nil {
		t.Fatal("a killed server answered PING")
	}
	s.Restart()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	s.Pause()
	if err := ping(s.Addr); err == nil {
		t.Fatal("a paused server answered PING")
	}
	s.Resume()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("resumed server: %v", err)
	}
}

// TestStartCluster: the one-node cluster serves every slot.
func TestStartCluster(t *testing.T) {
	s := StartCluster(t)
	info, err := command(s.Addr, "CLUSTER INFO")
	if err != nil || !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO = %q, %v; want every slot assigned", info, err)
	}
}
