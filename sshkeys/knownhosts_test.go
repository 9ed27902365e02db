package sshkeys

import (
	"errors"
	"net"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/internal/golden"
)

func pool3(t testing.TB) []HostKeys {
	k := fixedKeys(t)
	return []HostKeys{
		{Name: "sn1", Addresses: []string{"10.0.0.2", "fd00::2", "10.0.0.2", "::ffff:10.1.0.2"}, Keys: []ssh.PublicKey{k["host-sn1-rsa"], k["host-sn1"]}},
		{Name: "mn", Addresses: []string{"10.0.0.1"}, Keys: []ssh.PublicKey{k["host-mn"]}},
		{Name: "sn2.cluster", Addresses: []string{"10.0.0.3"}, Port: 2222, Keys: []ssh.PublicKey{k["host-mn"]}},
	}
}

func TestRenderKnownHostsGolden(t *testing.T) {
	existing := "# hand\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqLUxFGeXYVYf75oMIGfCoC6vB7c2jpe+SmQbeiZJua\n"
	got, err := RenderKnownHosts([]byte(existing), pool3(t))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "known_hosts.pool"), got)
	hosts := pool3(t)
	hosts[0], hosts[2] = hosts[2], hosts[0]
	again, err := RenderKnownHosts(got, hosts)
	if err != nil || string(again) != string(got) {
		t.Errorf("re-rendering with members in another order changed the file (err %v)", err)
	}
}

// TestKnownHostsAcceptedByClient checks the rendered file with the
// known_hosts reader that ssh clients in Go use.
func TestKnownHostsAcceptedByClient(t *testing.T) {
	k := fixedKeys(t)
	cb := hostKeyCallback(t, pool3(t))
	tests := map[string]struct {
		host   string
		remote string
		key    ssh.PublicKey
		ok     bool
	}{
		"name":                {"sn1:22", "10.0.0.2:22", k["host-sn1"], true},
		"address":             {"10.0.0.2:22", "10.0.0.2:22", k["host-sn1-rsa"], true},
		"ipv6":                {"[fd00::2]:22", "[fd00::2]:22", k["host-sn1"], true},
		"mapped v4 unmapped":  {"10.1.0.2:22", "10.1.0.2:22", k["host-sn1"], true},
		"other port":          {"sn2.cluster:2222", "10.0.0.3:2222", k["host-mn"], true},
		"wrong port":          {"sn2.cluster:22", "10.0.0.3:22", k["host-mn"], false},
		"wrong key":           {"mn:22", "10.0.0.1:22", k["host-sn1"], false},
		"compute key as host": {"mn:22", "10.0.0.1:22", k["compute"], false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			remote, err := net.ResolveTCPAddr("tcp", tc.remote)
			if err != nil {
				t.Fatal(err)
			}
			err = cb(tc.host, remote, tc.key)
			if (err == nil) != tc.ok {
				t.Fatalf("host key check: err %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestRenderKnownHostsRefusesBadInput(t *testing.T) {
	k := fixedKeys(t)
	keys := []ssh.PublicKey{k["host-mn"]}
	tests := map[string]struct {
		hosts []HostKeys
		want  error
	}{
		"empty name":        {[]HostKeys{{Keys: keys}}, ErrInvalidName},
		"name with comma":   {[]HostKeys{{Name: "a,b", Keys: keys}}, ErrInvalidName},
		"wildcard name":     {[]HostKeys{{Name: "*", Keys: keys}}, ErrInvalidName},
		"duplicate":         {[]HostKeys{{Name: "mn", Keys: keys}, {Name: "mn", Keys: keys}}, ErrInvalidName},
		"hostname address":  {[]HostKeys{{Name: "mn", Addresses: []string{"mn.example"}, Keys: keys}}, ErrInvalidAddress},
		"zoned address":     {[]HostKeys{{Name: "mn", Addresses: []string{"fe80::1%eth0"}, Keys: keys}}, ErrInvalidAddress},
		"port out of range": {[]HostKeys{{Name: "mn", Port: 70000, Keys: keys}}, ErrInvalidAddress},
		"no key":            {[]HostKeys{{Name: "mn"}}, ErrInvalidKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := RenderKnownHosts(nil, tc.hosts); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
