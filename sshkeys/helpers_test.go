package sshkeys

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// fixedKeys reads testdata/keys.txt: "name type base64" per line.
func fixedKeys(t testing.TB) map[string]ssh.PublicKey {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]ssh.PublicKey{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rest))
		if err != nil {
			t.Fatalf("testdata/keys.txt %s: %v", name, err)
		}
		keys[name] = k
	}
	return keys
}

// fixedPublicKeys is a PublicKeys as LoadPublicKeys would return it, with
// a rotation of both kinds in progress when rotating is true.
func fixedPublicKeys(t testing.TB, rotating bool) PublicKeys {
	k := fixedKeys(t)
	pk := PublicKeys{Pool: []ssh.PublicKey{k["pool"]}, Compute: []ssh.PublicKey{k["compute"]}}
	if rotating {
		pk.Pool = append(pk.Pool, k["pool-previous"])
		pk.Compute = append(pk.Compute, k["compute-previous"])
	}
	return pk
}

// hostKeyCallback renders hosts into a known_hosts file and loads it with
// the reader Go ssh clients use.
func hostKeyCallback(t testing.TB, hosts []HostKeys) ssh.HostKeyCallback {
	t.Helper()
	data, err := RenderKnownHosts(nil, hosts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// authLine is pub as an authorized_keys line with comment.
func authLine(pub ssh.PublicKey, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + comment
}

// acceptedKeys returns the keys a file accepts, as sshd would read it.
func acceptedKeys(t testing.TB, data []byte) []ssh.PublicKey {
	t.Helper()
	lines, _ := ReadAuthorizedKeys(data)
	var out []ssh.PublicKey
	for _, l := range lines {
		if l.Kind == LineKey {
			out = append(out, l.Key)
		}
	}
	return out
}

func mustContainKey(t testing.TB, data []byte, k ssh.PublicKey, want bool, what string) {
	t.Helper()
	if got := containsKey(acceptedKeys(t, data), k); got != want {
		t.Errorf("%s accepted = %v, want %v", what, got, want)
	}
	if !want && bytes.Contains(data, bytes.Fields(ssh.MarshalAuthorizedKey(k))[1]) {
		t.Errorf("%s: the key's base64 still appears in the file", what)
	}
}
