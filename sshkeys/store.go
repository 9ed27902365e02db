package sshkeys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/atomicfile"
)

// DefaultDir is where the keys live unless the caller says otherwise: with
// the rest of mnpool's configuration under /etc/mnpool. Every member must
// see the same keys: on an xCAT cluster whose /etc/xcat is on the shared,
// reliable file server (and, unlike /install, never served to compute
// nodes), make this directory a symbolic link to /etc/xcat/mnpool/sshkeys
// or mount it from there. See docs/SSHKEYS.md.
const DefaultDir = "/etc/mnpool/sshkeys"

// File names and modes inside the key directory.
const (
	privateSuffix  = ".key"
	publicSuffix   = ".pub"
	previousSuffix = ".old" // the key being rotated out
	nextSuffix     = ".new" // a rotation's new key before it is committed
	dirMode        = fs.FileMode(0o700)
	privateMode    = fs.FileMode(0o600)
	publicMode     = fs.FileMode(0o644)
)

// Options configures Init, Rotate and FinishRotation. The zero value is ready
// to use: ed25519 keys, both kinds, existing keys kept, logs discarded.
type Options struct {
	// Algorithm of a generated key. Empty means DefaultAlgorithm for Init and
	// the algorithm of the current key for Rotate.
	Algorithm Algorithm
	// RSABits is the RSA modulus size, between MinRSABits and MaxRSABits.
	// Zero means DefaultRSABits for Init and the current key's size for Rotate.
	RSABits int
	// Kinds limits Init to these kinds; empty means every kind.
	Kinds []Kind
	// Force makes Init replace keys that already exist. It refuses while a
	// rotation of that kind is in progress.
	Force bool
	// Logger receives one record per key generated, rotated or retired,
	// with the kind and the public fingerprint. Never key material.
	// Nil discards.
	Logger *slog.Logger
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// algorithm returns the algorithm and RSA size to generate, falling back to
// those of cur (may be nil) and then to the defaults.
func (o Options) algorithm(cur ssh.PublicKey) (Algorithm, int, error) {
	alg, bits := o.Algorithm, o.RSABits
	if alg == "" && cur != nil {
		alg = Ed25519
		if cur.Type() == ssh.KeyAlgoRSA {
			alg = RSA
		}
	}
	if alg == "" {
		alg = DefaultAlgorithm
	}
	if alg != Ed25519 && alg != RSA {
		return "", 0, fmt.Errorf("%w: %q (allowed: ed25519, rsa)", ErrInvalidAlgorithm, string(alg))
	}
	if alg != RSA {
		return alg, 0, nil
	}
	if bits == 0 && cur != nil && cur.Type() == ssh.KeyAlgoRSA {
		bits = keyBits(cur)
	}
	if bits == 0 {
		bits = DefaultRSABits
	}
	if bits < MinRSABits || bits > MaxRSABits {
		return "", 0, fmt.Errorf("%w: RSA size %d (allowed: %d to %d)", ErrInvalidAlgorithm, bits, MinRSABits, MaxRSABits)
	}
	return alg, bits, nil
}

func (o Options) kinds() ([]Kind, error) {
	if len(o.Kinds) == 0 {
		return Kinds(), nil
	}
	var out []Kind
	seen := map[Kind]bool{}
	for _, k := range o.Kinds {
		if err := k.valid(); err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// KeyPath is the private key file of kind in dir, usable with `ssh -i`.
func KeyPath(dir string, kind Kind) string {
	return filepath.Join(dir, kind.String()+privateSuffix)
}

func previousPath(dir string, kind Kind) string { return KeyPath(dir, kind) + previousSuffix }
func nextPath(dir string, kind Kind) string     { return KeyPath(dir, kind) + nextSuffix }

// keyComment is the comment in key files and rendered lines: "mnpool-pool".
func keyComment(kind Kind) string { return "mnpool-" + kind.String() }

// InitResult says what Init did, kind by kind.
type InitResult struct {
	Created  []Kind // generated now
	Existing []Kind // already there and kept
}

// Init creates dir (mode 0700) and a key pair of every kind in opts.Kinds
// that is missing. It is idempotent: an existing key is checked and kept
// unless opts.Force is set. A key file that exists but does not parse is an
// error (ErrKeyFile), replaced only with opts.Force.
func Init(ctx context.Context, dir string, opts Options) (InitResult, error) {
	var res InitResult
	kinds, err := opts.kinds()
	if err != nil {
		return res, err
	}
	alg, bits, err := opts.algorithm(nil)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return res, fmt.Errorf("sshkeys: create key directory %s: %w", dir, err)
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return res, err
	}
	defer unlock()
	log := opts.logger()
	for _, kind := range kinds {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := recoverRotation(dir, kind, log); err != nil {
			return res, err
		}
		cur, err := readSigner(KeyPath(dir, kind))
		switch {
		case err == nil && !opts.Force:
			if err := writePublic(KeyPath(dir, kind), cur.PublicKey(), kind); err != nil {
				return res, err
			}
			res.Existing = append(res.Existing, kind)
			continue
		case err != nil && !errors.Is(err, ErrNotInitialized) && !opts.Force:
			return res, err
		}
		if _, statErr := os.Stat(previousPath(dir, kind)); statErr == nil {
			return res, fmt.Errorf("%w: %s key in %s (finish the rotation before forcing a new key)", ErrRotationInProgress, kind, dir)
		}
		pub, err := generateKey(KeyPath(dir, kind), kind, alg, bits)
		if err != nil {
			return res, err
		}
		log.Info("sshkeys: generated key", "kind", kind.String(), "type", pub.Type(), "fingerprint", ssh.FingerprintSHA256(pub), "dir", dir)
		res.Created = append(res.Created, kind)
	}
	// A pool key equal to the compute key would defeat the whole point.
	if _, err := loadPublicKeys(dir); err != nil && !errors.Is(err, ErrNotInitialized) {
		return res, err
	}
	return res, nil
}

// generateKey makes a key pair and writes it to path (0600) and path.pub
// (0644), each atomically.
func generateKey(path string, kind Kind, alg Algorithm, bits int) (ssh.PublicKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RSA:
		priv, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("sshkeys: generate %s %s key: %w", alg, kind, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, keyComment(kind))
	if err != nil {
		return nil, fmt.Errorf("sshkeys: encode %s key: %w", kind, err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("sshkeys: encode %s public key: %w", kind, err)
	}
	if _, err := atomicfile.Write(path, pem.EncodeToMemory(block), atomicfile.Options{Private: true}); err != nil {
		return nil, fmt.Errorf("sshkeys: write %s: %w", path, err)
	}
	if err := writePublic(path, pub, kind); err != nil {
		return nil, err
	}
	return pub, nil
}

// writePublic (re)writes privPath.pub when its content differs. The .pub
// files are a convenience for people and tools; the private key file is the
// source of truth.
func writePublic(privPath string, pub ssh.PublicKey, kind Kind) error {
	path := privPath + publicSuffix
	want := []byte(authorizedLine(pub, keyComment(kind)) + "\n")
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == publicMode {
			return nil
		}
	}
	if _, err := atomicfile.Write(path, want, atomicfile.Options{Mode: publicMode, ForceMode: true}); err != nil {
		return fmt.Errorf("sshkeys: write %s: %w", path, err)
	}
	return nil
}

// authorizedLine is pub in authorized_keys form followed by comment.
func authorizedLine(pub ssh.PublicKey, comment string) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " " + comment
}

// maxKeyFile bounds what is read as a private key (an 8192-bit RSA key is
// under 7 KiB in OpenSSH format).
const maxKeyFile = 64 << 10

// readSigner loads an unencrypted OpenSSH (or PEM) private key. A missing
// file is ErrNotInitialized; anything else unusable is ErrKeyFile. Errors
// name the file, never its content.
func readSigner(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotInitialized, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, maxKeyFile)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return s, nil
}

// recoverRotation finishes or undoes a rotation that stopped half-way
// (process killed, host crashed). Rotate writes kind.key.new first, then
// kind.key.old, then renames .new over kind.key. So .new together with .old
// means the old key is saved and the rename is all that is missing; .new
// alone means nothing was committed and it is discarded. The caller holds
// the directory lock.
func recoverRotation(dir string, kind Kind, log *slog.Logger) error {
	next := nextPath(dir, kind)
	if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	cur := KeyPath(dir, kind)
	os.Remove(next + publicSuffix)
	if _, err := os.Stat(previousPath(dir, kind)); err == nil {
		if err := os.Rename(next, cur); err != nil {
			return fmt.Errorf("sshkeys: complete interrupted rotation of %s: %w", cur, err)
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			return fmt.Errorf("sshkeys: complete interrupted rotation of %s: %w", cur, err)
		}
		s, err := readSigner(cur)
		if err != nil {
			return err
		}
		log.Warn("sshkeys: completed an interrupted rotation", "kind", kind.String(), "fingerprint", ssh.FingerprintSHA256(s.PublicKey()))
		return rewritePublics(dir, kind)
	}
	if err := os.Remove(next); err != nil {
		return fmt.Errorf("sshkeys: discard interrupted rotation %s: %w", next, err)
	}
	log.Warn("sshkeys: discarded the new key of an interrupted rotation", "kind", kind.String())
	return atomicfile.SyncDir(dir)
}

// rewritePublics makes kind.key.pub and kind.key.old.pub (if rotating) match
// their private keys.
func rewritePublics(dir string, kind Kind) error {
	for _, p := range []string{KeyPath(dir, kind), previousPath(dir, kind)} {
		s, err := readSigner(p)
		if errors.Is(err, ErrNotInitialized) {
			os.Remove(p + publicSuffix)
			continue
		}
		if err != nil {
			return err
		}
		if err := writePublic(p, s.PublicKey(), kind); err != nil {
			return err
		}
	}
	return nil
}

// Signer loads the current private key of kind from dir, for example the
// pool key a member uses to push to nodes (snmove) or to reach another member.
func Signer(ctx context.Context, dir string, kind Kind) (ssh.Signer, error) {
	if err := kind.valid(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return readSigner(KeyPath(dir, kind))
}

// Signers returns the current key of kind and, during a rotation, the
// previous one after it. Give them all to ssh.PublicKeys so that a peer not
// yet updated to the new key still accepts the connection.
func Signers(ctx context.Context, dir string, kind Kind) ([]ssh.Signer, error) {
	if err := kind.valid(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return signers(dir, kind)
}

func signers(dir string, kind Kind) ([]ssh.Signer, error) {
	var out []ssh.Signer
	for _, kf := range readKeyFiles(dir, kind) {
		if kf.err != nil {
			return nil, kf.err
		}
		out = append(out, kf.signer)
	}
	return out, nil
}

// keyFile is one stored private key of a kind, as read from disk.
type keyFile struct {
	path     string
	previous bool
	signer   ssh.Signer
	err      error // from readSigner
}

// readKeyFiles reads the current key of kind (reported even when missing,
// with ErrNotInitialized) and the previous key if a rotation is in progress.
func readKeyFiles(dir string, kind Kind) []keyFile {
	var out []keyFile
	for i, p := range []string{KeyPath(dir, kind), previousPath(dir, kind)} {
		s, err := readSigner(p)
		if i == 1 && errors.Is(err, ErrNotInitialized) {
			break
		}
		out = append(out, keyFile{path: p, previous: i == 1, signer: s, err: err})
	}
	return out
}

// PublicKeys are the keys that rendered files accept. Index 0 is the current
// key; a second entry is the previous key while a rotation is in progress.
type PublicKeys struct {
	Pool    []ssh.PublicKey
	Compute []ssh.PublicKey
}

// LoadPublicKeys reads the public halves of every key in dir. It fails with
// ErrNotInitialized if a kind has no key and with ErrSameKey if any pool key
// equals any compute key.
func LoadPublicKeys(ctx context.Context, dir string) (PublicKeys, error) {
	if err := ctx.Err(); err != nil {
		return PublicKeys{}, err
	}
	return loadPublicKeys(dir)
}

func loadPublicKeys(dir string) (PublicKeys, error) {
	var pk PublicKeys
	for _, kind := range Kinds() {
		ss, err := signers(dir, kind)
		if err != nil {
			return PublicKeys{}, err
		}
		for _, s := range ss {
			if kind == KindPool {
				pk.Pool = append(pk.Pool, s.PublicKey())
			} else {
				pk.Compute = append(pk.Compute, s.PublicKey())
			}
		}
	}
	for _, p := range pk.Pool {
		if containsKey(pk.Compute, p) {
			return PublicKeys{}, fmt.Errorf("%w: %s in %s (run init with force for one kind)", ErrSameKey, ssh.FingerprintSHA256(p), dir)
		}
	}
	return pk, nil
}

func containsKey(keys []ssh.PublicKey, k ssh.PublicKey) bool {
	for _, c := range keys {
		if keyEqual(c, k) {
			return true
		}
	}
	return false
}

func keyEqual(a, b ssh.PublicKey) bool {
	return a.Type() == b.Type() && bytes.Equal(a.Marshal(), b.Marshal())
}

// KeyInfo describes one stored key; it holds no private material.
type KeyInfo struct {
	Kind Kind
	// Previous is true for the key being rotated out.
	Previous bool
	// Path of the private key file.
	Path string
	// Type is the SSH key type, e.g. "ssh-ed25519" or "ssh-rsa".
	Type string
	// Bits is the key size (256 for ed25519).
	Bits int
	// Fingerprint is the SHA256 fingerprint as ssh-keygen -l prints it.
	Fingerprint string
	// AuthorizedKey is the public key as one authorized_keys line, without
	// newline.
	AuthorizedKey string
	// ModTime of the private key file as the file server reports it. For a
	// previous key it is when the rotation started. Informational only: the
	// grace period is ended by FinishRotation, not by any clock.
	ModTime time.Time
}

// Show describes the keys in dir: for each kind the current key, then the
// previous key while a rotation is in progress. A kind with no key is
// ErrNotInitialized.
func Show(ctx context.Context, dir string) ([]KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, kind := range Kinds() {
		for _, kf := range readKeyFiles(dir, kind) {
			if kf.err != nil {
				return nil, kf.err
			}
			st, err := os.Stat(kf.path)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, kf.path, err)
			}
			out = append(out, keyInfo(kind, kf.previous, kf.path, kf.signer.PublicKey(), st.ModTime()))
		}
	}
	return out, nil
}

func keyInfo(kind Kind, previous bool, path string, pub ssh.PublicKey, mod time.Time) KeyInfo {
	return KeyInfo{
		Kind:          kind,
		Previous:      previous,
		Path:          path,
		Type:          pub.Type(),
		Bits:          keyBits(pub),
		Fingerprint:   ssh.FingerprintSHA256(pub),
		AuthorizedKey: authorizedLine(pub, keyComment(kind)),
		ModTime:       mod,
	}
}

func keyBits(pub ssh.PublicKey) int {
	cpk, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	switch k := cpk.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		return k.N.BitLen()
	case ed25519.PublicKey:
		return 256
	}
	return 0
}

// Rotate starts a rotation of kind: a new key pair becomes current and the
// old one is kept as kind.key.old. Rendered files accept both until
// FinishRotation, so re-render every member's and node's authorized_keys,
// check them with Audit, then finish. Only one rotation of a kind runs at a
// time (ErrRotationInProgress). The new key has the algorithm in opts, or
// else the current key's.
func Rotate(ctx context.Context, dir string, kind Kind, opts Options) (KeyInfo, error) {
	if err := kind.valid(); err != nil {
		return KeyInfo{}, err
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return KeyInfo{}, err
	}
	defer unlock()
	log := opts.logger()
	if err := recoverRotation(dir, kind, log); err != nil {
		return KeyInfo{}, err
	}
	curPath, prevPath, next := KeyPath(dir, kind), previousPath(dir, kind), nextPath(dir, kind)
	cur, err := readSigner(curPath)
	if err != nil {
		return KeyInfo{}, err
	}
	if _, err := os.Stat(prevPath); err == nil {
		return KeyInfo{}, fmt.Errorf("%w: %s exists (finish the rotation first: mnpool sshkeys rotate --kind %s --finish)", ErrRotationInProgress, prevPath, kind)
	}
	alg, bits, err := opts.algorithm(cur.PublicKey())
	if err != nil {
		return KeyInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return KeyInfo{}, err
	}
	// 1. the new key, under a name no reader uses;
	pub, err := generateKey(next, kind, alg, bits)
	if err != nil {
		return KeyInfo{}, err
	}
	// 2. a copy of the current key as the previous key;
	data, err := os.ReadFile(curPath)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %s: %w", ErrKeyFile, curPath, err)
	}
	if _, err := atomicfile.Write(prevPath, data, atomicfile.Options{Private: true}); err != nil {
		return KeyInfo{}, fmt.Errorf("sshkeys: write %s: %w", prevPath, err)
	}
	// 3. the commit: one rename. Readers see the old key or the new one.
	if err := os.Rename(next, curPath); err != nil {
		return KeyInfo{}, fmt.Errorf("sshkeys: rotate %s: %w", curPath, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return KeyInfo{}, fmt.Errorf("sshkeys: rotate %s: %w", curPath, err)
	}
	os.Remove(next + publicSuffix)
	if err := rewritePublics(dir, kind); err != nil {
		return KeyInfo{}, err
	}
	if _, err := loadPublicKeys(dir); err != nil && !errors.Is(err, ErrNotInitialized) {
		return KeyInfo{}, err
	}
	log.Info("sshkeys: rotation started", "kind", kind.String(),
		"previous", ssh.FingerprintSHA256(cur.PublicKey()), "current", ssh.FingerprintSHA256(pub))
	st, err := os.Stat(curPath)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %s: %w", ErrKeyFile, curPath, err)
	}
	return keyInfo(kind, false, curPath, pub, st.ModTime()), nil
}

// FinishRotation ends the grace period of kind: the previous key is deleted,
// and files rendered from now on accept only the current key. Re-render every
// authorized_keys afterwards. With no rotation in progress it returns
// ErrNoRotation.
func FinishRotation(ctx context.Context, dir string, kind Kind, opts Options) error {
	if err := kind.valid(); err != nil {
		return err
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return err
	}
	defer unlock()
	log := opts.logger()
	if err := recoverRotation(dir, kind, log); err != nil {
		return err
	}
	prevPath := previousPath(dir, kind)
	prev, err := readSigner(prevPath)
	if errors.Is(err, ErrNotInitialized) {
		return fmt.Errorf("%w: %s key in %s", ErrNoRotation, kind, dir)
	}
	fp := "unreadable"
	if err == nil {
		fp = ssh.FingerprintSHA256(prev.PublicKey())
	}
	if err := os.Remove(prevPath + publicSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sshkeys: finish rotation: %w", err)
	}
	if err := os.Remove(prevPath); err != nil {
		return fmt.Errorf("sshkeys: finish rotation: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("sshkeys: finish rotation: %w", err)
	}
	log.Info("sshkeys: rotation finished, previous key removed", "kind", kind.String(), "removed", fp)
	return nil
}
