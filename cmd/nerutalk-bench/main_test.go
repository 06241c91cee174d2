package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLoopbackBase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"127.0.0.1:18080", "http://127.0.0.1:18080"},
		{"http://localhost:8080/", "http://127.0.0.1:8080"},
		{"http://127.0.0.5:9", "http://127.0.0.5:9"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://127.0.0.1", "http://127.0.0.1:80"},
	}
	for _, tt := range tests {
		got, err := loopbackBase(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("loopbackBase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:80", "http://example.com", "https://127.0.0.1:443", "192.168.1.1:80", "::"} {
		if got, err := loopbackBase(bad); err == nil {
			t.Errorf("loopbackBase(%q) = %q, want an error", bad, got)
		}
	}
}

func TestAutoSrcIPs(t *testing.T) {
	t.Parallel()
	if got := autoSrcIPs(20000, 25000); got != nil {
		t.Errorf("autoSrcIPs(20000) = %v, want nil (one address)", got)
	}
	got := autoSrcIPs(60000, 25000)
	want := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 3)}
	if len(got) != len(want) {
		t.Fatalf("autoSrcIPs(60000) = %v, want %v", got, want)
	}
	for i := range got {
		if !got[i].Equal(want[i]) {
			t.Errorf("address %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"-scenario", "idle,chat", "-addr", "127.0.0.1:18080", "-idle-conns", "1k,2k",
		"-window", "2s", "-src-ips", "127.0.0.2,127.0.0.3", "-ws-addrs", "127.0.0.1:18081, http://127.0.0.1:18082",
		"-pid", "10", "-node-pids", "11,12", "-abuses", "group_flood, image_uploads"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.scenarios, ",") != "idle,chat" || o.base != "http://127.0.0.1:18080" || o.window != 2*time.Second ||
		len(o.idleConns) != 2 || o.idleConns[1] != 2000 || len(o.srcIPs) != 2 ||
		strings.Join(o.wsBases, " ") != "http://127.0.0.1:18080 http://127.0.0.1:18081 http://127.0.0.1:18082" ||
		fmt.Sprint(o.serverPIDs()) != "[10 11 12]" ||
		strings.Join(o.phases, ",") != "quiet,image_uploads,group_flood,quiet_end" {
		t.Errorf("parseOptions = %+v", o)
	}
	for _, bad := range [][]string{
		{},
		{"-scenario", "nope"},
		{"-scenario", "idle", "-addr", "10.1.2.3:80"},
		{"-scenario", "idle", "-runs", "0"},
		{"-scenario", "idle", "-idle-conns", "1.5"},
		{"-scenario", "chat", "-chat-rates", "fast"},
		{"-scenario", "chat", "-chat-users", "5", "-chat-group-size", "10"},
		{"-scenario", "fanout", "-fanout-sizes", "1"},
		{"-scenario", "idle", "-src-ips", "10.0.0.1"},
		{"-scenario", "idle", "extra"},
		{"-scenario", "chat", "-ws-addrs", "10.0.0.2:80"},
		{"-scenario", "chat", "-node-pids", "12,x"},
		{"-scenario", "chat", "-node-pids", "-3"},
		{"-scenario", "bystander", "-abuses", "quiet"},
		{"-scenario", "bystander", "-abuses", "image_uploads,"},
	} {
		if _, err := parseOptions(bad, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) accepted", bad)
		}
	}
}
