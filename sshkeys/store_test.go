package sshkeys

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// signVerify signs random data with s and verifies it with the public key
// as a peer would, after a round trip through the wire format.
func signVerify(t *testing.T, s ssh.Signer) {
	t.Helper()
	data := make([]byte, 64)
	rand.Read(data)
	sig, err := s.Sign(rand.Reader, data)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	pub, err := ssh.ParsePublicKey(s.PublicKey().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verify(data, sig); err != nil {
		t.Fatalf("verify: %v", err)
	}
	data[0] ^= 1
	if err := pub.Verify(data, sig); err == nil {
		t.Fatal("a signature over other data verified")
	}
}

func TestInitGeneratesUsableKeys(t *testing.T) {
	tests := map[string]struct {
		opts     Options
		wantType string
		wantBits int
	}{
		"default ed25519": {Options{}, ssh.KeyAlgoED25519, 256},
		"rsa 4096":        {Options{Algorithm: RSA}, ssh.KeyAlgoRSA, 4096},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "sshkeys")
			res, err := Init(ctx, dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(InitResult{Created: []Kind{KindPool, KindCompute}}, res); diff != "" {
				t.Errorf("Init result (-want +got):\n%s", diff)
			}
			if got := mode(t, dir); got != 0o700 {
				t.Errorf("dir mode %04o, want 0700", got)
			}
			for _, kind := range Kinds() {
				if got := mode(t, KeyPath(dir, kind)); got != 0o600 {
					t.Errorf("%s private key mode %04o, want 0600", kind, got)
				}
				if got := mode(t, KeyPath(dir, kind)+".pub"); got != 0o644 {
					t.Errorf("%s public key mode %04o, want 0644", kind, got)
				}
				s, err := Signer(ctx, dir, kind)
				if err != nil {
					t.Fatal(err)
				}
				if s.PublicKey().Type() != tc.wantType || keyBits(s.PublicKey()) != tc.wantBits {
					t.Errorf("%s key is %s/%d, want %s/%d", kind, s.PublicKey().Type(), keyBits(s.PublicKey()), tc.wantType, tc.wantBits)
				}
				signVerify(t, s)
				pubFile, err := os.ReadFile(KeyPath(dir, kind) + ".pub")
				if err != nil {
					t.Fatal(err)
				}
				pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubFile)
				if err != nil || !keyEqual(pub, s.PublicKey()) || comment != "mnpool-"+kind.String() {
					t.Errorf("%s.pub = %q, does not match the private key (err %v)", kind, pubFile, err)
				}
			}
			pk, err := LoadPublicKeys(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if keyEqual(pk.Pool[0], pk.Compute[0]) {
				t.Fatal("pool key equals compute key")
			}
		})
	}
}

func TestInitIsIdempotentAndForce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Init(ctx, dir, Options{Kinds: []Kind{KindPool}}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(KeyPath(dir, KindPool))
	res, err := Init(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(InitResult{Created: []Kind{KindCompute}, Existing: []Kind{KindPool}}, res); diff != "" {
		t.Errorf("second Init (-want +got):\n%s", diff)
	}
	after, _ := os.ReadFile(KeyPath(dir, KindPool))
	if string(before) != string(after) {
		t.Fatal("Init without Force changed an existing key")
	}
	// A damaged .pub is repaired from the private key.
	os.WriteFile(KeyPath(dir, KindPool)+".pub", []byte("junk\n"), 0o666)
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(KeyPath(dir, KindPool) + ".pub"); string(got) == "junk\n" || mode(t, KeyPath(dir, KindPool)+".pub") != 0o644 {
		t.Errorf(".pub not repaired: %q", got)
	}
	res, err = Init(ctx, dir, Options{Force: true, Kinds: []Kind{KindPool}})
	if err != nil {
		t.Fatal(err)
	}
	forced, _ := os.ReadFile(KeyPath(dir, KindPool))
	if string(forced) == string(before) || len(res.Created) != 1 {
		t.Fatalf("Force did not replace the pool key: %+v", res)
	}
}

func TestInitRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		opts Options
		want error
	}{
		"unknown algorithm": {Options{Algorithm: "dsa"}, ErrInvalidAlgorithm},
		"small rsa":         {Options{Algorithm: RSA, RSABits: 2048}, ErrInvalidAlgorithm},
		"huge rsa":          {Options{Algorithm: RSA, RSABits: 16384}, ErrInvalidAlgorithm},
		"unknown kind":      {Options{Kinds: []Kind{7}}, ErrInvalidKind},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "k")
			_, err := Init(ctx, dir, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("bad input created %s", dir)
			}
		})
	}
	t.Run("corrupt key is not replaced", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(KeyPath(dir, KindPool), []byte("not a key"), 0o600)
		if _, err := Init(ctx, dir, Options{}); !errors.Is(err, ErrKeyFile) {
			t.Fatalf("err = %v, want ErrKeyFile", err)
		}
		if got, _ := os.ReadFile(KeyPath(dir, KindPool)); string(got) != "not a key" {
			t.Fatal("corrupt key was overwritten")
		}
		if _, err := Init(ctx, dir, Options{Force: true}); err != nil {
			t.Fatalf("Force over a corrupt key: %v", err)
		}
		if _, err := Signer(ctx, dir, KindPool); err != nil {
			t.Fatalf("after Force: %v", err)
		}
	})
	t.Run("pool key copied over compute key", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Init(ctx, dir, Options{}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(KeyPath(dir, KindPool))
		os.WriteFile(KeyPath(dir, KindCompute), data, 0o600)
		if _, err := LoadPublicKeys(ctx, dir); !errors.Is(err, ErrSameKey) {
			t.Fatalf("LoadPublicKeys err = %v, want ErrSameKey", err)
		}
		if _, err := Init(ctx, dir, Options{}); !errors.Is(err, ErrSameKey) {
			t.Fatalf("Init err = %v, want ErrSameKey", err)
		}
	})
}

func TestLogsCarryNoKeyMaterial(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var buf bytes.Buffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if _, err := Init(ctx, dir, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(ctx, dir, KindPool, opts); err != nil {
		t.Fatal(err)
	}
	if err := FinishRotation(ctx, dir, KindPool, opts); err != nil {
		t.Fatal(err)
	}
	logs := buf.String()
	pool := mustSigner(t, dir, KindPool)
	if !strings.Contains(logs, ssh.FingerprintSHA256(pool.PublicKey())) {
		t.Errorf("logs do not name the new pool key's fingerprint:\n%s", logs)
	}
	for _, kind := range Kinds() {
		data, _ := os.ReadFile(KeyPath(dir, kind))
		body := strings.Split(string(data), "\n")[1] // first base64 line of the private key
		if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, body) {
			t.Fatalf("logs contain private key material:\n%s", logs)
		}
	}
}

func TestShowAndSigners(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Show(ctx, dir); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Show on empty dir: %v, want ErrNotInitialized", err)
	}
	if _, err := Signer(ctx, dir, KindPool); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Signer on empty dir: %v, want ErrNotInitialized", err)
	}
	if _, err := Signer(ctx, dir, Kind(0)); !errors.Is(err, ErrInvalidKind) {
		t.Fatalf("Signer(kind 0): %v, want ErrInvalidKind", err)
	}
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	old, _ := Signer(ctx, dir, KindPool)
	if _, err := Rotate(ctx, dir, KindPool, Options{}); err != nil {
		t.Fatal(err)
	}
	infos, err := Show(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Kind     Kind
		Previous bool
		Path     string
		Type     string
		Bits     int
	}
	var got []row
	for _, i := range infos {
		got = append(got, row{i.Kind, i.Previous, i.Path, i.Type, i.Bits})
		if i.Fingerprint != ssh.FingerprintSHA256(mustParse(t, i.AuthorizedKey)) || i.ModTime.IsZero() {
			t.Errorf("%+v: fingerprint or mtime wrong", i)
		}
	}
	want := []row{
		{KindPool, false, KeyPath(dir, KindPool), ssh.KeyAlgoED25519, 256},
		{KindPool, true, KeyPath(dir, KindPool) + ".old", ssh.KeyAlgoED25519, 256},
		{KindCompute, false, KeyPath(dir, KindCompute), ssh.KeyAlgoED25519, 256},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Show (-want +got):\n%s", diff)
	}
	ss, err := Signers(ctx, dir, KindPool)
	if err != nil || len(ss) != 2 || !keyEqual(ss[1].PublicKey(), old.PublicKey()) || infos[0].Fingerprint != ssh.FingerprintSHA256(ss[0].PublicKey()) {
		t.Fatalf("Signers during rotation: %d signers, err %v; want current then previous", len(ss), err)
	}
}

func mustParse(t testing.TB, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRotateStates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Rotate(ctx, dir, KindPool, Options{}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Rotate before Init: %v, want ErrNotInitialized", err)
	}
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := FinishRotation(ctx, dir, KindPool, Options{}); !errors.Is(err, ErrNoRotation) {
		t.Fatalf("FinishRotation without rotation: %v, want ErrNoRotation", err)
	}
	// Switching an ed25519 key to RSA takes the default RSA size, not the
	// current key's 256 bits.
	ed, _ := Signer(ctx, dir, KindPool)
	if alg, bits, err := (Options{Algorithm: RSA}).algorithm(ed.PublicKey()); alg != RSA || bits != DefaultRSABits || err != nil {
		t.Errorf("RSA from ed25519: %s/%d, %v; want rsa/%d", alg, bits, err, DefaultRSABits)
	}
	if _, err := Rotate(ctx, dir, KindPool, Options{Algorithm: RSA, RSABits: MinRSABits}); err != nil {
		t.Fatal(err)
	}
	if s, _ := Signer(ctx, dir, KindPool); s.PublicKey().Type() != ssh.KeyAlgoRSA {
		t.Errorf("Rotate with Algorithm RSA made a %s key", s.PublicKey().Type())
	}
	if _, err := Rotate(ctx, dir, KindPool, Options{}); !errors.Is(err, ErrRotationInProgress) {
		t.Fatalf("second Rotate: %v, want ErrRotationInProgress", err)
	}
	if _, err := Init(ctx, dir, Options{Force: true}); !errors.Is(err, ErrRotationInProgress) {
		t.Fatalf("Init Force during rotation: %v, want ErrRotationInProgress", err)
	}
	if got := mode(t, KeyPath(dir, KindPool)+".old"); got != 0o600 {
		t.Errorf("previous key mode %04o, want 0600", got)
	}
	if err := FinishRotation(ctx, dir, KindPool, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".old", ".old.pub"} {
		if _, err := os.Stat(KeyPath(dir, KindPool) + p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pool.key%s still there after FinishRotation", p)
		}
	}
	// The next rotation keeps the current algorithm and size.
	if _, err := Rotate(ctx, dir, KindPool, Options{}); err != nil {
		t.Fatal(err)
	}
	if s, _ := Signer(ctx, dir, KindPool); s.PublicKey().Type() != ssh.KeyAlgoRSA || keyBits(s.PublicKey()) != MinRSABits {
		t.Errorf("second rotation made %s/%d, want the current ssh-rsa/%d", s.PublicKey().Type(), keyBits(s.PublicKey()), MinRSABits)
	}
}

// TestRotateRecoversFromInterruption recreates the states a killed Rotate
// leaves behind and checks that the next operation settles them.
func TestRotateRecoversFromInterruption(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		writeOld     bool // the crash came after the previous key was saved
		wantCurrent  string
		wantRotating bool
	}{
		"killed after writing the new key": {writeOld: false, wantCurrent: "old", wantRotating: false},
		"killed before the commit rename":  {writeOld: true, wantCurrent: "new", wantRotating: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Init(ctx, dir, Options{}); err != nil {
				t.Fatal(err)
			}
			cur := KeyPath(dir, KindPool)
			oldKey, _ := os.ReadFile(cur)
			newPub, err := generateKey(cur+".new", KindPool, Ed25519, 0)
			if err != nil {
				t.Fatal(err)
			}
			if tc.writeOld {
				os.WriteFile(cur+".old", oldKey, 0o600)
			}
			// Readers meanwhile still get a usable current key.
			if s, err := Signer(ctx, dir, KindPool); err != nil || keyEqual(s.PublicKey(), newPub) {
				t.Fatalf("reader during the interruption: err %v, got the uncommitted key %v", err, err == nil)
			}
			_, err = Init(ctx, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := Signer(ctx, dir, KindPool)
			if gotNew := keyEqual(s.PublicKey(), newPub); gotNew != (tc.wantCurrent == "new") {
				t.Errorf("current key is new = %v, want %s", gotNew, tc.wantCurrent)
			}
			_, err = os.Stat(cur + ".old")
			if rotating := err == nil; rotating != tc.wantRotating {
				t.Errorf("rotating = %v, want %v", rotating, tc.wantRotating)
			}
			for _, p := range []string{".new", ".new.pub"} {
				if _, err := os.Stat(cur + p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("pool.key%s left behind", p)
				}
			}
			pub, _ := os.ReadFile(cur + ".pub")
			if !keyEqual(mustParse(t, string(pub)), s.PublicKey()) {
				t.Error("pool.key.pub does not match pool.key after recovery")
			}
		})
	}
}

func TestConcurrentRotateOneWins(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Init(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = Rotate(ctx, dir, KindPool, Options{}) })
	}
	wg.Wait()
	var ok, inProgress int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrRotationInProgress):
			inProgress++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || inProgress != n-1 {
		t.Fatalf("%d rotations succeeded and %d saw one in progress, want 1 and %d", ok, inProgress, n-1)
	}
	ss, err := Signers(ctx, dir, KindPool)
	if err != nil || len(ss) != 2 {
		t.Fatalf("after concurrent rotations: %d signers, err %v", len(ss), err)
	}
}

func TestLockHonoursContext(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Rotate(ctx, dir, KindPool, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Rotate while locked: %v, want context.DeadlineExceeded", err)
	}
}

func TestParseNames(t *testing.T) {
	for _, s := range []string{"pool", "Compute"} {
		if _, err := ParseKind(s); err != nil {
			t.Errorf("ParseKind(%q): %v", s, err)
		}
	}
	if _, err := ParseKind("host"); !errors.Is(err, ErrInvalidKind) {
		t.Errorf("ParseKind(host): %v", err)
	}
	if _, err := ParseAlgorithm("ECDSA"); !errors.Is(err, ErrInvalidAlgorithm) {
		t.Errorf("ParseAlgorithm(ECDSA): %v", err)
	}
	if tg, err := ParseTarget("node"); err != nil || tg != TargetNode {
		t.Errorf("ParseTarget(node) = %v, %v", tg, err)
	}
	for k := range findingNames {
		if got, err := ParseFindingKind(k.String()); err != nil || got != k {
			t.Errorf("ParseFindingKind(%q) = %v, %v", k, got, err)
		}
	}
}
